"""Data-parallel training under torchrun: which process this is, and the few collectives the job needs.

Every rank draws the same epoch order and takes every world-th sample of each global batch. DDP
averages the gradients, and batch norm normalises by the statistics of the global batch (`SyncBatchNorm`,
unless turned off), so every rank computes the same G and eta and takes the same AGD step as one process
on the whole batch would, to float rounding. With per-rank batch norm (--no-sync-batchnorm) a batch-norm
network (ResNet, VGG) is another network: each rank normalises by its own share of the batch. Metrics are
summed over ranks; rank 0 writes the files.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def launched_by_torchrun() -> bool:
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def is_first_process() -> bool:
    """Rank 0 under torchrun, or a process started alone (before the process group exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def start(device: torch.device) -> tuple[Ranks, torch.device]:
    """Join the process group torchrun set up; on CUDA each rank takes the GPU of its local rank."""
    ranks = Ranks(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return ranks, device


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def data_parallel(net: torch.nn.Module, device: torch.device, ranks: Ranks,
                  sync_batchnorm: bool = True) -> torch.nn.Module:
    """`net` wrapped in DDP (gradients averaged over the ranks) when there are several ranks, else itself. With
    `sync_batchnorm` its batch-norm layers are first made SyncBatchNorm, in place: `net` keeps its parameters,
    buffers and state_dict keys."""
    if not ranks.active:
        return net
    if sync_batchnorm:
        net = synchronise_batchnorm(net)
    device_ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


class _SumOverRanks(torch.autograd.Function):
    """An all-reduce (sum) that gradients flow through: the gradient of a sum over ranks is the sum of theirs."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm over the global batch of a data-parallel step: in training, each rank's per-channel sums are
    added over the ranks (one all-reduce forward, one backward), so every rank normalises, and updates its
    running statistics, as one process on the whole batch would. Works on any backend (gloo on the CPU too, where
    torch.nn.SyncBatchNorm does not run). Elsewhere (evaluation, one rank) it is plain batch norm."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        channels, axes = x.shape[1], [0, *range(2, x.dim())]
        view = (1, channels, *[1] * (x.dim() - 2))
        # Sums about the running mean, identical on every rank: no cancellation once it is near the batch mean.
        shift = (self.running_mean.detach() if self.track_running_stats
                 else torch.zeros(channels, dtype=x.dtype, device=x.device))
        centred = x - shift.view(view)
        count = torch.full((1,), x.numel() / channels, dtype=x.dtype, device=x.device)
        sums = _SumOverRanks.apply(torch.cat([centred.sum(axes), (centred * centred).sum(axes), count]))
        n = sums[-1]
        offset = sums[:channels] / n
        mean = shift + offset
        var = sums[channels:2 * channels] / n - offset * offset
        y = (x - mean.view(view)) * torch.rsqrt(var + self.eps).view(view)
        if self.affine:
            y = y * self.weight.view(view) + self.bias.view(view)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), momentum)
        return y


def synchronise_batchnorm(module: torch.nn.Module) -> torch.nn.Module:
    """`module` with every batch-norm layer replaced, in place, by a SyncBatchNorm holding its very parameters and
    buffers (optimizers, checkpoints and state_dict keys are unchanged); returns the (possibly new) root."""
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(module, SyncBatchNorm):
        synced = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                               module.track_running_stats)
        synced._parameters, synced._buffers = module._parameters, module._buffers
        synced.train(module.training)
        return synced
    for name, child in module.named_children():
        synced = synchronise_batchnorm(child)
        if synced is not child:
            setattr(module, name, synced)
    return module


def sum_over_ranks(ranks: Ranks, values: list[float | torch.Tensor], device: torch.device) -> list[float]:
    """The sums over all ranks of a few scalars (one all-reduce), as Python floats."""
    stacked = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device) for v in values])
    if ranks.active:
        dist.all_reduce(stacked)
    return stacked.tolist()


def any_rank(ranks: Ranks, flag: bool, device: torch.device) -> bool:
    """True on every rank if it is true on one: all ranks must stop at the same step."""
    if not ranks.active:
        return flag
    value = torch.tensor(float(flag), device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def share(batch: tuple[torch.Tensor, torch.Tensor], ranks: Ranks) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of an evaluation batch."""
    x, y = batch
    return x[ranks.rank :: ranks.world], y[ranks.rank :: ranks.world]
