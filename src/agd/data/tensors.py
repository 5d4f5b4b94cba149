"""A dataset held as normalised tensors on the training device, shuffled and augmented there in batches."""

from collections.abc import Iterator

import torch

from agd.data.augment import CropFlip, CropFlipDraw
from agd.data.catalog import DatasetInfo
from agd.data.epochs import check_start_step, epoch_generator, steps_per_epoch

Batch = tuple[torch.Tensor, torch.Tensor]

TRAIN_EVAL_SEED = 0


class DeviceDataset:
    """Train, test and (optionally) validation splits as float32 images (N, C, H, W) and int64 labels, all on one
    device. The validation split is carved from the training set (agd.data.loading): it is never trained on."""

    def __init__(self, info: DatasetInfo, train_x: torch.Tensor, train_y: torch.Tensor,
                 test_x: torch.Tensor, test_y: torch.Tensor, augment: CropFlip | None = None,
                 val_x: torch.Tensor | None = None, val_y: torch.Tensor | None = None):
        if len(train_x) != len(train_y) or len(test_x) != len(test_y) or (val_x is None) != (val_y is None) or (
                val_x is not None and len(val_x) != len(val_y)):
            raise ValueError("images and labels differ in length")
        self.info = info
        self.train_x, self.train_y = train_x, train_y.long()
        self.test_x, self.test_y = test_x, test_y.long()
        self.val_x, self.val_y = val_x, None if val_y is None else val_y.long()
        self.augment = augment
        self.device = train_x.device
        self._train_eval_indices: dict[int, torch.Tensor] = {}

    def steps_per_epoch(self, batch_size: int) -> int:
        return steps_per_epoch(len(self.train_x), batch_size)

    def train_batches(self, batch_size: int, *, seed: int, epoch: int, start_step: int = 0,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
        """The epoch's shuffled, augmented batches from `start_step` on.

        Everything random is drawn here, up front, from a generator seeded by (seed, epoch), so
        any start_step yields exactly the tail of the uninterrupted epoch. With shard=(rank, world)
        each batch is the rank's share (every world-th sample) of the same global batch.
        """
        steps = self.steps_per_epoch(batch_size)
        check_start_step(start_step, steps)
        generator = epoch_generator(seed, epoch, self.device)
        order = torch.randperm(len(self.train_x), generator=generator, device=self.device)
        draw = self.augment.draw(len(order), generator) if self.augment else None
        return self._train_batches(order, draw, batch_size, start_step, steps, shard)

    def _train_batches(self, order: torch.Tensor, draw: CropFlipDraw | None, batch_size: int,
                       start_step: int, steps: int, shard: tuple[int, int]) -> Iterator[Batch]:
        rank, world = shard
        for step in range(start_step, steps):
            start, stop = step * batch_size, (step + 1) * batch_size
            indices = order[start:stop][rank::world]
            x = self.train_x[indices]
            if draw is not None:
                x = self.augment.apply(x, draw.slice(start, stop).every(rank, world))
            yield x, self.train_y[indices]

    def test_batches(self, batch_size: int) -> Iterator[Batch]:
        """The whole test set in order, without augmentation."""
        return in_order(self.test_x, self.test_y, batch_size)

    @property
    def has_validation(self) -> bool:
        return self.val_x is not None

    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        """The whole validation split in order, without augmentation (none without a split)."""
        if self.val_x is None:
            return iter(())
        return in_order(self.val_x, self.val_y, batch_size)

    def train_eval_batches(self, batch_size: int, max_samples: int = 10_000) -> Iterator[Batch]:
        """A fixed subset of at most `max_samples` training images, in a fixed order, without augmentation."""
        steps_per_epoch(max_samples, batch_size)  # rejects batch_size < 1
        indices = self.train_eval_indices(max_samples)
        for start in range(0, len(indices), batch_size):
            chosen = indices[start : start + batch_size]
            yield self.train_x[chosen], self.train_y[chosen]

    def train_eval_indices(self, max_samples: int) -> torch.Tensor:
        """Sorted indices of the subset; drawn on the CPU so every device picks the same images."""
        if max_samples not in self._train_eval_indices:
            n = len(self.train_x)
            if max_samples >= n:
                chosen = torch.arange(n)
            else:
                generator = torch.Generator().manual_seed(TRAIN_EVAL_SEED)
                chosen = torch.randperm(n, generator=generator)[:max_samples].sort().values
            self._train_eval_indices[max_samples] = chosen.to(self.device)
        return self._train_eval_indices[max_samples]


def in_order(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Iterator[Batch]:
    """A split's images and labels in order, `batch_size` at a time."""
    steps_per_epoch(len(x), batch_size)  # rejects batch_size < 1
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]
