"""Static facts about each dataset: sizes, shapes, normalisation constants; nothing is loaded here."""

import os
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("cifar10", "cifar100", "mnist", "mnist5k", "imagenet")
MNIST_LIKE = ("mnist", "mnist5k")
DOWNLOADABLE = ("cifar10", "cifar100", "mnist")  # torchvision fetches these; mnist5k ships in a wheel
TEXTS = ("shakespeare_char", "python_docs_char", "openwebtext")  # token streams of the language models
LABELS = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet": "ImageNet"}  # as the paper names them


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W) as the model sees it, after padding
    train_size: int
    test_size: int


@dataclass(frozen=True)
class Normalization:
    mean: tuple[float, ...]
    std: tuple[float, ...]


# The CIFAR std values are the kuangliu constants used by the paper, not the true per-channel std.
NORMALIZATION = {
    "cifar10": Normalization((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": Normalization((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    "mnist": Normalization((0.1307,), (0.3081,)),
    "mnist5k": Normalization((0.1307,), (0.3081,)),
    "imagenet": Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

AUGMENTED = ("cifar10", "cifar100")  # random crop with 4-pixel zero padding + horizontal flip

# Training images a benchmark holds out as its validation split (choices are made there, never on the test set):
# a tenth of CIFAR's and MNIST's training sets, an eighth of mnist5k's 4000. ImageNet is read from folders and
# keeps no split of its own here.
VALIDATION_SIZE = {"cifar10": 5_000, "cifar100": 5_000, "mnist": 6_000, "mnist5k": 500}
VALIDATION_SEED = 0  # one split per dataset and size, the same images for every run

_NATIVE = {
    "cifar10": DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000),
    "cifar100": DatasetInfo("cifar100", 100, (3, 32, 32), 50_000, 10_000),
    "mnist": DatasetInfo("mnist", 10, (1, 28, 28), 60_000, 10_000),
    "mnist5k": DatasetInfo("mnist5k", 10, (1, 28, 28), 4_000, 1_000),
    "imagenet": DatasetInfo("imagenet", 1000, (3, 224, 224), 1_281_167, 50_000),
}


def check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def padded_side(name: str, side: int, pad_to: int | None) -> int:
    """Image side after padding to `pad_to` (equal padding on both sides, so the difference must be even)."""
    if pad_to is None or pad_to == side:
        return side
    if name == "imagenet":
        raise ValueError(f"pad_to={pad_to} does not apply to imagenet (its crops are always 224x224)")
    if pad_to < side or (pad_to - side) % 2:
        raise ValueError(f"pad_to={pad_to} cannot pad {name}'s {side}x{side} images evenly: use {side} + an even number")
    return pad_to


def dataset_info(name: str, pad_to: int | None = None) -> DatasetInfo:
    """The dataset's canonical sizes and the input shape a model built for it needs."""
    check_name(name)
    native = _NATIVE[name]
    channels, side, _ = native.input_shape
    side = padded_side(name, side, pad_to)
    return DatasetInfo(native.name, native.num_classes, (channels, side, side), native.train_size, native.test_size)


IMAGENET_SPLITS = ("train", "val")  # each with one folder of images per class
IMAGENET_ENV = "IMAGENET_PATH"       # where ImageNet is when no root is given


def imagenet_root(given: str | Path | None) -> str | Path | None:
    """The given ImageNet root, else $IMAGENET_PATH (None when neither is set)."""
    return given or os.environ.get(IMAGENET_ENV) or None


def imagenet_missing(root: str | Path) -> list[str]:
    """The split folders an ImageNet root lacks."""
    return [split for split in IMAGENET_SPLITS if not (Path(root) / split).is_dir()]
