"""Whether a run's model can fit in its device's memory, decided from its settings before data is loaded or a
weight is allocated: a width of a billion is refused with the flags that asked for it, not by the allocator. And
how many runs of one shape fit stacked (agd.jobs.batched) in the memory a job may use, activations at the run's
batch size counted."""

import functools
import os

import torch

from agd.jobs.gpu_lease import SLOTS
from agd.losses import build_loss
from agd.models import size
from agd.models.build import build_model
from agd.models.size import fcn_parameters, too_large
from agd.plan.specs import ImageRun, LMRun

# A stacked network also holds each layer's weights stacked, and their gradient, during its step.
STACKED_BYTES_PER_PARAMETER = size.BYTES_PER_PARAMETER + 8
# What a job plans to use of the memory it may have: the rest is for the allocator's fragmentation, cuDNN's
# workspaces and the evaluation batches.
PLANNED_SHARE = 0.75


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


@functools.cache
def activation_bytes_per_image(spec: ImageRun, input_shape: tuple[int, int, int], num_classes: int) -> int:
    """Bytes of the tensors one training image keeps for the backward pass (what autograd saves, each storage
    once), counted on the meta device, where nothing is allocated: the growth from a batch of one to one of two."""

    def saved(batch: int) -> int:
        storages = {}

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            storage = tensor.untyped_storage()
            storages[storage._cdata] = storage.nbytes()
            return tensor

        with torch.device("meta"):
            model = build_model(spec.arch, input_shape=input_shape, num_classes=num_classes, depth=spec.depth,
                                width=spec.width, bias=spec.bias)
            x, y = torch.zeros(batch, *input_shape), torch.zeros(batch, dtype=torch.long)
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                build_loss(spec.loss, num_classes, spec.beta)(model(x), y)
        return sum(storages.values())

    return saved(2) - saved(1)


def stacked_run_bytes(spec: ImageRun, input_shape: tuple[int, int, int], num_classes: int) -> int:
    """What one run adds to a stacked cohort's training step: its weights, gradients, optimizer state and stacked
    copies, and its activations at its batch size."""
    return (image_parameters(spec, input_shape, num_classes) * STACKED_BYTES_PER_PARAMETER
            + activation_bytes_per_image(spec, tuple(input_shape), num_classes) * spec.batch_size)


def job_budget(device: torch.device) -> int:
    """Bytes this job plans to use on `device` beyond what it holds already: on a GPU its share of the GPU (the
    slots it leased, agd.jobs.gpu_lease) less what it holds, within what is free; on the CPU the free RAM."""
    if device.type != "cuda":
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        return int(PLANNED_SHARE * free)
    free, total = torch.cuda.mem_get_info(device)
    held, slots = (int(n) for n in os.environ.get(SLOTS, "1/1").split("/"))
    share = total * held // slots - torch.cuda.memory_reserved(device)
    return int(PLANNED_SHARE * max(0, min(free, share)))


def cohort_sizes(runs: int, run_bytes: int, budget: int) -> list[int]:
    """How `runs` runs of `run_bytes` each are split into stacked cohorts that fit `budget`: as few and as even
    as can be, one run to a cohort at least."""
    fit = max(1, budget // max(1, run_bytes))
    cohorts = -(-runs // fit)
    return [runs // cohorts + (i < runs % cohorts) for i in range(cohorts)]


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
