"""Whether a run's model can fit in its device's memory, decided from its settings before data is loaded or a
weight is allocated: a width of a billion is refused with the flags that asked for it, not by the allocator."""

import functools
import os

import torch

from agd.models import size
from agd.models.build import build_model
from agd.models.size import fcn_parameters, too_large
from agd.plan.specs import ImageRun, LMRun


def image_parameters(spec: ImageRun, input_shape: tuple[int, int, int], num_classes: int) -> int:
    """The FCN's by formula (a depth of 1e8 is not built to count it). A conv net's channels are multiples of its
    base width w, so its count is a quadratic a w^2 + b w + c: built on the meta device at w = 1, 2, 3 (no
    weight allocated, no overflow at a width of 1e9) and evaluated at the run's width."""
    if spec.arch == "fcn":
        channels, height, width = input_shape
        return fcn_parameters(channels * height * width, num_classes, spec.depth, spec.width, spec.bias)
    a2, b, c = conv_coefficients(spec.arch, tuple(input_shape), num_classes, spec.bias)
    w = spec.width
    return a2 * w * w // 2 + b * w + c


@functools.cache
def conv_coefficients(arch: str, input_shape: tuple[int, int, int], num_classes: int,
                      bias: bool) -> tuple[int, int, int]:
    """(2a, b, c) of a conv net's parameter count a w^2 + b w + c; once per network in a process (a bundle's
    members share it)."""

    def count(width: int) -> int:
        with torch.device("meta"):
            model = build_model(arch, input_shape=input_shape, num_classes=num_classes, width=width, bias=bias)
        return sum(p.numel() for p in model.parameters())

    p1, p2, p3 = count(1), count(2), count(3)
    a2 = p3 - 2 * p2 + p1
    b = p2 - p1 - 3 * a2 // 2
    return a2, b, p1 - a2 // 2 - b


def lm_parameters(spec: LMRun) -> int:
    return size.lm_parameters(spec.n_layer, spec.n_embd, spec.block_size, spec.bias)


def capacity(device: torch.device) -> int:
    """Bytes of memory on `device`: the GPU's own, or the machine's RAM."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_problem(parameters: int, device: torch.device, flags: str) -> str | None:
    """A message naming `flags` if `parameters` cannot fit on `device`, else None."""
    return too_large(parameters, capacity(device), device.type, flags)
