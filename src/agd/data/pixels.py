"""Pixel-space operations done once at load time: zero padding and normalisation of uint8 images."""

import torch
from torch.nn import functional as F

from agd.data.catalog import Normalization


def pad_images(images: torch.Tensor, side: int) -> torch.Tensor:
    """Zero-pad uint8 NCHW images equally on all sides to side x side (zero is black, before normalisation)."""
    border = (side - images.shape[-1]) // 2
    if border == 0:
        return images
    return F.pad(images, (border, border, border, border), value=0)


def channel_constants(norm: Normalization, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(norm.mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return mean, std


def normalize(images: torch.Tensor, norm: Normalization) -> torch.Tensor:
    """uint8 NCHW -> float32, the same arithmetic as torchvision's ToTensor then Normalize."""
    mean, std = channel_constants(norm, images.device)
    return images.float().div(255).sub(mean).div(std)


def normalized_zero(norm: Normalization, device: torch.device) -> torch.Tensor:
    """Per-channel value (shape (C,)) that a black pixel has after normalisation: the crop's padding value."""
    mean, std = channel_constants(norm, device)
    return torch.zeros_like(mean).sub(mean).div(std).flatten()
