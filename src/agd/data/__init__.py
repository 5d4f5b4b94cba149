"""Datasets of the paper: CIFAR and MNIST as tensors on the training device, ImageNet through DataLoader workers,
and token streams for the language models.

Importing this package imports no torch (agd.data.catalog holds the static facts); loaders load on first use.
"""

from agd.data.catalog import DATASETS, IMAGENET_ENV, TEXTS, DatasetInfo, dataset_info, imagenet_root
from agd.lazy import lazy_attributes

_LAZY = {
    "CropFlip": "agd.data.augment",
    "DeviceDataset": "agd.data.tensors",
    "ImageNetDataset": "agd.data.imagenet",
    "resolve_imagenet_root": "agd.data.imagenet",
    "Dataset": "agd.data.loading",
    "load_dataset": "agd.data.loading",
}

__all__ = ["DATASETS", "IMAGENET_ENV", "TEXTS", "DatasetInfo", "dataset_info", "imagenet_root", *_LAZY]
__getattr__ = lazy_attributes(__name__, _LAZY)
