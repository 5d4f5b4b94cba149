"""Load a dataset onto the training device by name."""

from pathlib import Path

import torch

from agd.data.augment import CropFlip
from agd.data.catalog import AUGMENTED, NORMALIZATION, DatasetInfo, check_name, dataset_info
from agd.data.imagenet import ImageNetDataset
from agd.data.pixels import normalize, normalized_zero, pad_images
from agd.data.sources import read_raw
from agd.data.tensors import DeviceDataset

Dataset = DeviceDataset | ImageNetDataset

CIFAR_CROP_PADDING = 4


def load_dataset(name: str, *, device: torch.device, data_dir: str | Path = "data", pad_to: int | None = None,
                 download: bool = True, imagenet_root: str | Path | None = None, num_workers: int = 8) -> Dataset:
    """Load a dataset for training on `device`; see DeviceDataset and ImageNetDataset for the batch methods."""
    check_name(name)
    device = torch.device(device)
    canonical = dataset_info(name, pad_to)
    if name == "imagenet":
        return ImageNetDataset(imagenet_root, device, num_workers=num_workers)

    raw = read_raw(name, Path(data_dir), download)
    side = canonical.input_shape[-1]
    norm = NORMALIZATION[name]

    def prepare(images: torch.Tensor) -> torch.Tensor:
        # Moved as uint8 (4x less to copy), then padded and normalised on the device.
        return normalize(pad_images(images.to(device), side), norm)

    info = DatasetInfo(name, canonical.num_classes, canonical.input_shape, len(raw.train_labels), len(raw.test_labels))
    augment = CropFlip(CIFAR_CROP_PADDING, normalized_zero(norm, device)) if name in AUGMENTED else None
    return DeviceDataset(info, prepare(raw.train_images), raw.train_labels.to(device),
                         prepare(raw.test_images), raw.test_labels.to(device), augment=augment)
