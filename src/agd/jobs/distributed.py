"""Data-parallel training under torchrun: which process this is, and the few collectives the job needs.

Every rank draws the same epoch order and takes every world-th sample of each global batch. DDP
averages the gradients, so every rank computes the same G and eta and takes the same AGD step as one
process on the whole batch would. Metrics are summed over ranks; rank 0 writes the files.
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


def data_parallel(net: torch.nn.Module, device: torch.device, ranks: Ranks) -> torch.nn.Module:
    """`net` wrapped in DDP (gradients averaged over the ranks) when there are several ranks, else itself."""
    if not ranks.active:
        return net
    device_ids = [device] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(net, device_ids=device_ids)


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
