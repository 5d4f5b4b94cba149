"""Optimizers: AGD (Algorithm 1), its bias/affine-aware variant, and the Adam/SGD baselines."""

import torch

from agd.optim.agd import AGD
from agd.optim.agd_bias import AGDBias, resnet_block_scale

OPTIMIZERS = ("agd", "agd-bias", "adam", "sgd")
# The paper's "default" rates for the untuned baselines (showcase figure).
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}

__all__ = ["AGD", "AGDBias", "DEFAULT_LR", "OPTIMIZERS", "build_optimizer", "resnet_block_scale"]


def build_optimizer(name: str, model: torch.nn.Module, *, lr: float | None = None, gain: float = 1.0) -> torch.optim.Optimizer:
    """The optimizer `name` over `model`, with its initialisation applied.

    AGD variants re-initialise the weights (orthogonal); Adam and SGD keep PyTorch's default init and
    PyTorch's defaults for everything but the learning rate, as in the paper.
    """
    if name == "agd":
        opt = AGD(model.named_parameters(), gain=gain)
    elif name == "agd-bias":
        num_blocks = getattr(model, "num_blocks", None)
        block_scale = resnet_block_scale(num_blocks) if num_blocks else None
        opt = AGDBias(model.named_parameters(), gain=gain, block_scale=block_scale)
    elif name == "adam":
        return torch.optim.Adam(model.parameters(), lr=DEFAULT_LR["adam"] if lr is None else lr)
    elif name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=DEFAULT_LR["sgd"] if lr is None else lr)
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    opt.init_weights()
    return opt
