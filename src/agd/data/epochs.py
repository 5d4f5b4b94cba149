"""Epoch bookkeeping shared by all datasets: step counts and the per-(seed, epoch) random generator."""

import hashlib
import math

import torch


def steps_per_epoch(num_samples: int, batch_size: int) -> int:
    """Batches in one epoch; the last one may be smaller (no drop_last)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return math.ceil(num_samples / batch_size)


def check_start_step(start_step: int, steps: int) -> None:
    if not 0 <= start_step <= steps:
        raise ValueError(f"start_step={start_step} is outside the epoch's 0..{steps} steps")


def epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit seed that depends on (seed, epoch) only; hashed so that nearby pairs give unrelated streams."""
    digest = hashlib.blake2b(f"agd.data:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch))
