"""Shapes shared by the AGD variants: singular-value targets, per-slice norms and orthogonal init."""

import math

import torch


def singular_value(weight: torch.Tensor) -> float:
    """s_k = sqrt(d_k / d_{k-1}), divided by sqrt(k_x k_y) for a conv kernel (spec §1.1)."""
    d_out, d_in = weight.shape[:2]
    receptive_field = math.prod(weight.shape[2:])
    return math.sqrt(d_out / d_in) / math.sqrt(receptive_field)


def slice_norms(tensor: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of each d_out x d_in slice: a scalar for a matrix, [k_x, k_y] for a conv kernel.

    keepdim so that the result broadcasts against the tensor.
    """
    return torch.linalg.vector_norm(tensor, dim=(0, 1), keepdim=True)


@torch.no_grad()
def orthogonal_(weight: torch.Tensor, scale: float) -> None:
    """Make every d_out x d_in slice semi-orthogonal, then multiply the whole tensor by scale."""
    d_out, d_in = weight.shape[:2]
    slices = torch.empty(
        (math.prod(weight.shape[2:]), d_out, d_in), dtype=torch.float32, device=weight.device
    )
    for matrix in slices:
        torch.nn.init.orthogonal_(matrix)
    # [k, d_out, d_in] -> [d_out, d_in, k_x, k_y]
    slices = slices.permute(1, 2, 0).reshape(weight.shape)
    weight.copy_(slices * scale)


def safe_reciprocal(x: torch.Tensor) -> torch.Tensor:
    """1/x where x > 0, else 0: a zero gradient gets a zero update instead of 0/0 (the later
    reference code's nan_to_num has the same effect)."""
    return torch.where(x > 0, 1 / x, torch.zeros_like(x))


def eta_from_gradient_summary(G: torch.Tensor) -> torch.Tensor:
    """The automatic learning rate eta = log((1 + sqrt(1 + 4G)) / 2), the root of e^eta (e^eta - 1) = G."""
    return torch.log((1 + torch.sqrt(1 + 4 * G)) / 2)
