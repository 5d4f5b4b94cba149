"""Load a dataset onto the training device by name."""

from pathlib import Path

import torch

from agd.data.augment import CropFlip
from agd.data.catalog import AUGMENTED, NORMALIZATION, VALIDATION_SEED, DatasetInfo, check_name, dataset_info
from agd.data.imagenet import ImageNetDataset
from agd.data.pixels import normalize, normalized_zero, pad_images
from agd.data.sources import read_raw
from agd.data.tensors import DeviceDataset

Dataset = DeviceDataset | ImageNetDataset

CIFAR_CROP_PADDING = 4


def load_dataset(name: str, *, device: torch.device, data_dir: str | Path = "data", pad_to: int | None = None,
                 download: bool = True, imagenet_root: str | Path | None = None, num_workers: int = 8,
                 val_size: int = 0) -> Dataset:
    """Load a dataset for training on `device`; see DeviceDataset and ImageNetDataset for the batch methods. With
    `val_size`, that many training images are held out as a validation split (`validation_split`)."""
    check_name(name)
    device = torch.device(device)
    canonical = dataset_info(name, pad_to)
    if name == "imagenet":
        if val_size:
            raise ValueError("a validation split is carved from datasets held in memory; ImageNet is read from folders")
        return ImageNetDataset(imagenet_root, device, num_workers=num_workers)

    raw = read_raw(name, Path(data_dir), download)
    side = canonical.input_shape[-1]
    norm = NORMALIZATION[name]

    def prepare(images: torch.Tensor) -> torch.Tensor:
        # Moved as uint8 (4x less to copy), then padded and normalised on the device.
        return normalize(pad_images(images.to(device), side), norm)

    train, val = validation_split(len(raw.train_labels), val_size)
    info = DatasetInfo(name, canonical.num_classes, canonical.input_shape, len(train), len(raw.test_labels))
    augment = CropFlip(CIFAR_CROP_PADDING, normalized_zero(norm, device)) if name in AUGMENTED else None
    held_out = {"val_x": prepare(raw.train_images[val]), "val_y": raw.train_labels[val].to(device)} if val_size else {}
    return DeviceDataset(info, prepare(raw.train_images[train]), raw.train_labels[train].to(device),
                         prepare(raw.test_images), raw.test_labels.to(device), augment=augment, **held_out)


def validation_split(train_size: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (in their original order) of the images kept for training and of the `val_size` held out: drawn
    on the CPU from a fixed seed, so every run on every device holds out the same images."""
    if not 0 <= val_size < train_size:
        raise ValueError(f"a validation split of {val_size} images leaves no training images of {train_size}")
    if val_size == 0:
        return torch.arange(train_size), torch.arange(0)
    order = torch.randperm(train_size, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    return order[val_size:].sort().values, order[:val_size].sort().values
