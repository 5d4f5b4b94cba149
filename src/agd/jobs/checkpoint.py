"""Resumable runs: the checkpoint file, and turning SIGTERM/SIGUSR1 into a checkpoint-and-exit.

A checkpoint ends with the sha256 of the bytes before it (a trailer that torch.load passes over), written in
the same atomic write, and is verified before it is read: a flipped byte is refused, never resumed from.
"""

import hashlib
import os
import signal
from pathlib import Path

import torch

from agd.io import atomic_write

CHECKPOINT = "checkpoint.pt"
# The checkpoint before the last, kept by runs that are checkpointed together with others (a bundle's
# cohort): a kill between their writes leaves some runs one checkpoint ahead, and these bring them back.
PREVIOUS = "checkpoint.prev.pt"
FORMAT = 2  # 2: with the digest trailer; 1: without (written by earlier versions, read unverified)
TRAILER = b"\nagd-sha256:"
TRAILER_SIZE = len(TRAILER) + 64 + 1


class Damaged(ValueError):
    """A checkpoint whose bytes are not the ones written."""


class _Hashing:
    """A file that hashes what is written to it."""

    def __init__(self, f):
        self.f, self.digest = f, hashlib.sha256()
        self.error: OSError | None = None  # torch.save reports a failed write as a RuntimeError

    def write(self, data) -> int:
        self.digest.update(data)
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.f.flush()


def save(run_dir: Path, state: dict, keep_previous: bool = False) -> None:
    path = Path(run_dir) / CHECKPOINT
    if keep_previous and path.exists():
        path.replace(path.with_name(PREVIOUS))

    def write(f) -> None:
        hashing = _Hashing(f)
        try:
            torch.save({"format": FORMAT, **state}, hashing)
        except RuntimeError:
            if hashing.error is not None:
                raise hashing.error from None  # a full disk, say: the write's own error
            raise
        f.write(TRAILER + hashing.digest.hexdigest().encode() + b"\n")

    atomic_write(path, write)


def recorded_digest(path: Path) -> str | None:
    """The digest in the checkpoint's trailer, None if it has none."""
    size = os.path.getsize(path)
    if size < TRAILER_SIZE:
        return None
    with open(path, "rb") as f:
        f.seek(size - TRAILER_SIZE)
        tail = f.read()
    if not tail.startswith(TRAILER) or not tail.endswith(b"\n"):
        return None
    return tail[len(TRAILER):-1].decode("ascii", errors="replace")


def verify(path: Path) -> bool:
    """Whether the checkpoint carries a digest (format 2); Damaged if its bytes do not match it."""
    recorded = recorded_digest(path)
    if recorded is None:
        return False
    digest = hashlib.sha256()
    left = os.path.getsize(path) - TRAILER_SIZE
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            digest.update(chunk)
            left -= len(chunk)
    if digest.hexdigest() != recorded:
        raise Damaged(f"{path} differs from the checkpoint that was written (its sha256 does not match the one it "
                      "carries)")
    return True


def load(run_dir: Path, device: torch.device, name: str = CHECKPOINT) -> dict | None:
    """The checkpoint `name`, verified, or None. The latest checkpoint is the previous one while a kill left no
    other. Damaged if its bytes changed since it was written, ValueError if this version cannot read it."""
    path = Path(run_dir) / name
    if name == CHECKPOINT and not path.exists():
        path = path.with_name(PREVIOUS)
    if not path.exists():
        return None
    verified = verify(path)
    state = torch.load(path, map_location=device, weights_only=False)
    if not isinstance(state, dict) or state.get("format") not in (1, FORMAT):
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path} has checkpoint format {found}, this version reads {FORMAT} (and 1)")
    if state["format"] == FORMAT and not verified:
        raise Damaged(f"{path} has lost the digest it was written with")
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
