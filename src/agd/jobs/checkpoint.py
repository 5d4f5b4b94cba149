"""Resumable runs: the checkpoint file, and turning SIGTERM/SIGUSR1 into a checkpoint-and-exit."""

import signal
from pathlib import Path

import torch

from agd.io import atomic_write

CHECKPOINT = "checkpoint.pt"
# The checkpoint before the last, kept by runs that are checkpointed together with others (a bundle's
# cohort): a kill between their writes leaves some runs one checkpoint ahead, and these bring them back.
PREVIOUS = "checkpoint.prev.pt"
FORMAT = 1


def save(run_dir: Path, state: dict, keep_previous: bool = False) -> None:
    path = Path(run_dir) / CHECKPOINT
    if keep_previous and path.exists():
        path.replace(path.with_name(PREVIOUS))
    atomic_write(path, lambda f: torch.save({"format": FORMAT, **state}, f))


def load(run_dir: Path, device: torch.device, name: str = CHECKPOINT) -> dict | None:
    """The checkpoint `name`, or None. The latest checkpoint is the previous one while a kill left no other."""
    path = Path(run_dir) / name
    if name == CHECKPOINT and not path.exists():
        path = path.with_name(PREVIOUS)
    if not path.exists():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} has checkpoint format {state.get('format')}, this version reads {FORMAT}")
    return state


def remove(run_dir: Path) -> None:
    for name in (CHECKPOINT, PREVIOUS):
        (Path(run_dir) / name).unlink(missing_ok=True)


class StopRequest:
    """Records SIGTERM, SIGUSR1 (how SLURM announces preemption) and SIGINT; the loop polls it."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self) -> "StopRequest":
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._record)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _record(self, signum, frame) -> None:
        self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)
