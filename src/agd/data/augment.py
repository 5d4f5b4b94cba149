"""Random crop with zero padding and horizontal flip, drawn per epoch and applied to whole batches on the device."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class CropFlipDraw:
    """One epoch's augmentation parameters, indexed by position in the epoch (not by sample)."""

    offsets: torch.Tensor  # (n, 2) int64: top and left corner of the crop in the padded image, 0..2*padding
    flips: torch.Tensor  # (n,) bool

    def slice(self, start: int, stop: int) -> "CropFlipDraw":
        return CropFlipDraw(self.offsets[start:stop], self.flips[start:stop])

    def every(self, first: int, step: int) -> "CropFlipDraw":
        return CropFlipDraw(self.offsets[first::step], self.flips[first::step])


@dataclass(frozen=True)
class CropFlip:
    """torchvision's RandomCrop(size, padding) then RandomHorizontalFlip(0.5), on normalised images.

    `fill` is the per-channel normalised value of a black pixel, so the padding is zero in pixel space.
    """

    padding: int
    fill: torch.Tensor  # (C,)

    def draw(self, n: int, generator: torch.Generator) -> CropFlipDraw:
        device = generator.device
        offsets = torch.randint(0, 2 * self.padding + 1, (n, 2), generator=generator, device=device)
        flips = torch.rand(n, generator=generator, device=device) < 0.5
        return CropFlipDraw(offsets, flips)

    def apply(self, images: torch.Tensor, draw: CropFlipDraw) -> torch.Tensor:
        """Crop and flip a batch (B, C, H, W) in one gather; output has the input's shape."""
        b, c, h, w = images.shape
        p = self.padding
        padded = self.fill.to(images).view(1, c, 1, 1).expand(b, c, h + 2 * p, w + 2 * p).clone()
        padded[:, :, p : p + h, p : p + w] = images
        rows = draw.offsets[:, :1] + torch.arange(h, device=images.device)
        columns = torch.arange(w, device=images.device).expand(b, w)
        columns = torch.where(draw.flips[:, None], columns.flip(1), columns) + draw.offsets[:, 1:]
        batch = torch.arange(b, device=images.device)
        channel = torch.arange(c, device=images.device)
        return padded[batch[:, None, None, None], channel[None, :, None, None], rows[:, None, :, None], columns[:, None, None, :]]
