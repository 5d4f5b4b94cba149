"""nanoGPT's learning-rate schedule for the AdamW baseline: linear warmup, then cosine decay to a floor."""

import math


def warmup_cosine(iteration: int, *, lr: float, min_lr: float, warmup_iters: int, decay_iters: int) -> float:
    """The rate for `iteration` (counted from 0): lr * (it+1)/(warmup+1) during warmup, cosine from lr to
    min_lr until decay_iters, min_lr after."""
    if iteration < warmup_iters:
        return lr * (iteration + 1) / (warmup_iters + 1)
    if iteration > decay_iters:
        return min_lr
    progress = (iteration - warmup_iters) / max(1, decay_iters - warmup_iters)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)
