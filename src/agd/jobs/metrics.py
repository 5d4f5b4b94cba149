"""What the training job measures: running epoch statistics, the relative update size, evaluation."""

import math
from collections.abc import Callable, Iterable

import torch

from agd.losses import Loss

# Sums a few scalars over the ranks of a distributed run (identity on one process).
Reduce = Callable[[list], list[float]]


def local(values: list) -> list[float]:
    return [float(v) for v in values]


COLUMNS = [
    "kind", "epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
    "eta_mean", "eta_min", "eta_max", "update_mean", "update_min", "update_max", "lr", "time_s",
]


class RunningStats:
    """Sum, min and max of a per-step scalar, kept on the device so that no step waits for the host."""

    def __init__(self, device: torch.device):
        self.device = device
        self.count = 0
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.low = torch.full((), math.inf, dtype=torch.float64, device=device)
        self.high = torch.full((), -math.inf, dtype=torch.float64, device=device)

    def add(self, value: torch.Tensor) -> None:
        value = value.detach().to(self.device, torch.float64)
        self.count += 1
        self.total += value
        torch.minimum(self.low, value, out=self.low)
        torch.maximum(self.high, value, out=self.high)

    def summary(self) -> tuple[float | None, float | None, float | None]:
        if self.count == 0:
            return None, None, None
        return float(self.total) / self.count, float(self.low), float(self.high)

    def state_dict(self) -> dict:
        return {"count": self.count, "total": self.total.cpu(), "low": self.low.cpu(), "high": self.high.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.count = state["count"]
        for name in ("total", "low", "high"):
            getattr(self, name).copy_(state[name])


class EpochMeter:
    """Sample-weighted loss and accuracy over an epoch's training batches, with eta and update statistics."""

    def __init__(self, device: torch.device):
        self.samples = 0
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.eta = RunningStats(device)
        self.update = RunningStats(device)

    def add_batch(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        n = labels.shape[0]
        self.samples += n
        self.loss_sum += loss.detach().to(torch.float64) * n
        self.correct += (logits.detach().argmax(dim=1) == labels).sum()

    def train_metrics(self, reduce: Reduce = local) -> tuple[float, float]:
        loss_sum, correct, samples = reduce([self.loss_sum, self.correct, self.samples])
        return loss_sum / samples, correct / samples

    def state_dict(self) -> dict:
        return {
            "samples": self.samples, "loss_sum": self.loss_sum.cpu(), "correct": self.correct.cpu(),
            "eta": self.eta.state_dict(), "update": self.update.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.samples = state["samples"]
        self.loss_sum.copy_(state["loss_sum"])
        self.correct.copy_(state["correct"])
        self.eta.load_state_dict(state["eta"])
        self.update.load_state_dict(state["update"])


class UpdateSize:
    """Relative update size (1/L) sum_k ||W_k' - W_k||_F / ||W_k||_F over the weight tensors (ndim >= 2)."""

    def __init__(self, parameters: Iterable[torch.Tensor]):
        self.weights = [p for p in parameters if p.ndim >= 2]
        self.before = [torch.empty_like(w) for w in self.weights]
        self.norms: torch.Tensor | None = None

    @torch.no_grad()
    def snapshot(self) -> None:
        torch._foreach_copy_(self.before, self.weights)
        self.norms = torch.stack(torch._foreach_norm(self.before))

    @torch.no_grad()
    def measure(self) -> torch.Tensor:
        torch._foreach_sub_(self.before, self.weights)
        change = torch.stack(torch._foreach_norm(self.before))
        return (change / self.norms).mean()


@torch.no_grad()
def evaluate(model: torch.nn.Module, forward: Callable[[torch.Tensor], list[torch.Tensor]], batches: Iterable,
             loss_fns: list[Loss], reduce: Reduce = local) -> list[tuple[float, float]]:
    """Each run's sample-weighted mean loss and accuracy, `forward(x)` giving the runs' logits; `model` is put
    in eval mode for it and left in train mode."""
    model.eval()
    samples, loss_sums, corrects = 0, [0.0] * len(loss_fns), [0] * len(loss_fns)
    for x, y in batches:
        if len(y) == 0:
            continue
        samples += y.shape[0]
        for k, (loss_fn, logits) in enumerate(zip(loss_fns, forward(x))):
            loss_sums[k] = loss_sums[k] + loss_fn(logits, y).to(torch.float64) * y.shape[0]
            corrects[k] = corrects[k] + (logits.argmax(dim=1) == y).sum()
    model.train()
    *totals, samples = reduce([*loss_sums, *corrects, samples])
    runs = len(loss_fns)
    return [(loss_sum / samples, correct / samples) for loss_sum, correct in zip(totals[:runs], totals[runs:])]


def summary_line(position: str, before: list[str], row: dict, after: list[str]) -> str:
    """The log line of one metric row: where the run is, the job's losses, eta where AGD logged it, the job's
    other figures, and the wall time."""
    parts = [position, *before]
    if row["eta_mean"] is not None:
        parts.append(f"eta {row['eta_mean']:.4f} [{row['eta_min']:.4f}, {row['eta_max']:.4f}]")
    return "  ".join([*parts, *after, f"{row['time_s']:.1f}s"])
