"""The two objectives of the paper's code: square loss with scaled one-hot targets, and cross-entropy."""

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def build_loss(name: str, num_classes: int, beta: float = 1.0) -> Loss:
    """Mean loss over the batch.

    mse: mean over batch and classes of (f(x) - y)^2 with y = sqrt(C) * one_hot, so ||y|| = sqrt(C)
    (the reference code's definition: no factor 1/2, and the objective starts near 1 at init).
    xent: cross-entropy of beta * logits.
    """
    if name == "mse":
        target_scale = math.sqrt(num_classes)

        def mse(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            target = F.one_hot(labels, num_classes).to(logits.dtype) * target_scale
            return F.mse_loss(logits, target)

        return mse
    if name == "xent":
        return lambda logits, labels: F.cross_entropy(beta * logits, labels)
    raise ValueError(f"unknown loss {name!r}; choose mse or xent")
