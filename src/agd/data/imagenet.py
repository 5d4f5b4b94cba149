"""ImageNet from an ImageFolder tree, read by DataLoader workers with per-sample seeded augmentation."""

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from agd.data.catalog import IMAGENET_ENV, NORMALIZATION, DatasetInfo, imagenet_missing, imagenet_root
from agd.data.epochs import check_start_step, epoch_generator, steps_per_epoch
from agd.data.tensors import TRAIN_EVAL_SEED, Batch

LAYOUT = "ROOT/train and ROOT/val, each with one folder of images per class"


def resolve_imagenet_root(root: str | Path | None) -> Path:
    """The given root, else $IMAGENET_PATH; a ValueError that says what is expected if neither is usable."""
    chosen = imagenet_root(root)
    if chosen is None:
        raise ValueError(f"imagenet needs its data: pass imagenet_root (--imagenet-root) or set {IMAGENET_ENV} "
                         f"to a folder laid out as {LAYOUT}")
    chosen = Path(chosen)
    missing = imagenet_missing(chosen)
    if missing:
        raise ValueError(f"ImageNet root {chosen} (from imagenet_root or {IMAGENET_ENV}) lacks "
                         f"{' and '.join(missing)}/: expected {LAYOUT}")
    return chosen


def train_transform():
    from torchvision import transforms as T

    norm = NORMALIZATION["imagenet"]
    return T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(norm.mean, norm.std)])


def test_transform():
    from torchvision import transforms as T

    norm = NORMALIZATION["imagenet"]
    return T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize(norm.mean, norm.std)])


class FolderImages(Dataset):
    """An ImageFolder's files under a given transform, sharing the folder's (slow to build) file list."""

    def __init__(self, folder, transform):
        self.folder, self.transform = folder, transform

    def __len__(self) -> int:
        return len(self.folder.samples)

    def __getitem__(self, index: int):
        path, label = self.folder.samples[index]
        return self.transform(self.folder.loader(path)), label


class SeededFolderImages(FolderImages):
    """Items are (index, seed): the random transform of each sample is fixed by its seed, whichever worker runs it."""

    def __getitem__(self, item: tuple[int, int]):
        index, seed = item
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return super().__getitem__(index)


class EpochBatches(Sampler):
    """Batches of (index, seed) pairs of the current epoch; replaced before each epoch so persistent workers are reused."""

    def __init__(self):
        self.batches: list[list[tuple[int, int]]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class ImageNetDataset:
    """ImageNet train/val; same methods as DeviceDataset, batches moved to `device` as they arrive."""

    def __init__(self, root: str | Path | None, device: torch.device, num_workers: int = 8):
        from torchvision.datasets import ImageFolder

        root = resolve_imagenet_root(root)
        self.train_folder = ImageFolder(str(root / "train"))
        self.val_folder = ImageFolder(str(root / "val"))
        if self.train_folder.classes != self.val_folder.classes:
            raise ValueError(f"ImageNet root {root}: train/ and val/ must hold the same class folders")
        self.info = DatasetInfo("imagenet", len(self.train_folder.classes), (3, 224, 224),
                                len(self.train_folder), len(self.val_folder))
        self.device = torch.device(device)
        self.num_workers = num_workers
        self._loaders: dict[tuple, DataLoader] = {}

    def _loader(self, key: tuple, dataset: Dataset, **batching) -> DataLoader:
        """batching: batch_size and sampler, or batch_sampler."""
        if key not in self._loaders:
            self._loaders[key] = DataLoader(
                dataset, **batching, num_workers=self.num_workers,
                pin_memory=self.device.type == "cuda", persistent_workers=self.num_workers > 0,
                # Its own generator for the workers' base seed, so loading leaves the global RNG untouched.
                generator=torch.Generator(),
            )
        return self._loaders[key]

    def _to_device(self, loader: DataLoader) -> Iterator[Batch]:
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def steps_per_epoch(self, batch_size: int) -> int:
        return steps_per_epoch(self.info.train_size, batch_size)

    def train_batches(self, batch_size: int, *, seed: int, epoch: int, start_step: int = 0,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        """Batches start_step, start_step+1, ... of the epoch; order and crops depend on (seed, epoch) only.

        With shard=(rank, world) a rank loads only its share (every world-th sample) of each global batch.
        """
        steps = self.steps_per_epoch(batch_size)
        check_start_step(start_step, steps)
        # On the CPU: the sampler and the workers live there.
        generator = epoch_generator(seed, epoch, torch.device("cpu"))
        order = torch.randperm(self.info.train_size, generator=generator)
        seeds = torch.randint(0, 2**62, (self.info.train_size,), generator=generator)
        items = list(zip(order.tolist(), seeds.tolist()))
        rank, world = shard
        loader = self._loader(("train", batch_size), SeededFolderImages(self.train_folder, train_transform()),
                              batch_sampler=EpochBatches())
        loader.batch_sampler.batches = [items[step * batch_size:(step + 1) * batch_size][rank::world]
                                        for step in range(start_step, steps)]
        return self._to_device(loader)

    has_validation = False  # the validation split of an in-memory dataset (agd.data.loading) has no folder twin

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        indices = range(self.info.test_size)
        loader = self._loader(("test", batch_size), FolderImages(self.val_folder, test_transform()),
                              batch_size=batch_size, sampler=indices)
        return self._to_device(loader)

    def train_eval_batches(self, batch_size: int, max_samples: int = 10_000) -> Iterator[Batch]:
        """A fixed subset of training images with the test transform (no augmentation)."""
        n = self.info.train_size
        if max_samples >= n:
            indices = list(range(n))
        else:
            generator = torch.Generator().manual_seed(TRAIN_EVAL_SEED)
            indices = torch.randperm(n, generator=generator)[:max_samples].sort().values.tolist()
        loader = self._loader(("train_eval", batch_size, max_samples),
                              FolderImages(self.train_folder, test_transform()), batch_size=batch_size, sampler=indices)
        return self._to_device(loader)
