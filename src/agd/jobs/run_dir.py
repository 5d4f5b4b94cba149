"""What both training jobs do with their --out directory: reuse a finished run, resume a checkpoint, end a run.

A run directory holds metrics.csv, run.json once the run has ended, and checkpoint.pt while it is
under way (or after, with --keep-checkpoint). Starting a job again with the same arguments therefore
does nothing, resumes, or extends a finished run to a longer length.
"""

import json
import math
import pickle
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from agd.jobs import checkpoint, distributed
from agd.io import write_csv, write_json

METRICS = "metrics.csv"
RUN_RECORD = "run.json"
UNREADABLE = (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError)


class RunDirProblem(Exception):
    """--out holds something this run cannot use; the message says what and how to fix it."""


class RunState:
    """What a training job's loop keeps across the attempts of one run: its metric rows, the wall time
    of every attempt, checkpoint.pt and metrics.csv in --out. A job's subclass adds its model, optimizer
    and position in the run to state_dict and load_state_dict, and names its metrics.csv `columns`."""

    columns: list[str]

    def __init__(self, out: Path, device: torch.device, ranks: distributed.Ranks):
        self.out, self.device, self.ranks = out, device, ranks
        self.rows: list[dict] = []
        self.elapsed_before = 0.0
        self.started = self.last_checkpoint = time.monotonic()
        self.last_flush = -math.inf

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def state_dict(self) -> dict:
        return {"rows": self.rows, "elapsed": self.elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.elapsed_before = state["rows"], state["elapsed"]

    keep_previous = False  # see checkpoint.PREVIOUS

    def save_checkpoint(self) -> None:
        if self.ranks.is_main:
            checkpoint.save(self.out, self.state_dict(), self.keep_previous)
        self.last_checkpoint = time.monotonic()

    def flush_metrics(self) -> None:
        if self.ranks.is_main:
            write_csv(self.out / METRICS, self.columns, self.rows)
        self.last_flush = time.monotonic()

    def stop_requested(self, stop: checkpoint.StopRequest) -> bool:
        """On every rank as soon as one has a stop request: all ranks must stop at the same step."""
        return distributed.any_rank(self.ranks, bool(stop), self.device)


def previous_record(out: Path) -> dict | None:
    path = Path(out) / RUN_RECORD
    return json.loads(path.read_text()) if path.exists() else None


def read(out: Path, identity: dict, length: str, value: int, keep_checkpoint: bool) -> tuple[bool, dict | None]:
    """(finished, checkpoint state): finished when --out already holds this run at this `length` (the
    argument that sets how long it trains, e.g. epochs) or longer, or a diverged one; else the checkpoint to resume
    from, if any, read into host memory. Raises RunDirProblem when --out holds another run or is unreadable."""
    try:
        record = previous_record(out)
        state = checkpoint.load(out, torch.device("cpu"))
    except UNREADABLE as e:
        raise RunDirProblem(f"cannot read what {out} holds ({e}); delete {out} to start the run over") from e
    if record is not None:
        if record.get("identity") != identity:
            raise RunDirProblem(f"{out} holds a different run ({RUN_RECORD} was made with other arguments); "
                                "use another --out, or delete that directory to start over")
        # A finished run at least as long holds this one (epoch e does not depend on the epochs after it).
        if record["status"] == "diverged" or record["args"][length] >= value:
            print(f"{out}: run already {record['status']} ({length} {record['args'][length]}), nothing to do")
            if not keep_checkpoint:
                checkpoint.remove(out)
            return True, None
    if state is not None and state["identity"] != identity:
        changed = sorted(k for k in identity if state["identity"].get(k) != identity[k])
        raise RunDirProblem(f"{out}/{checkpoint.CHECKPOINT} was made with different {', '.join(changed)}; "
                            "use another --out, or delete the checkpoint to start over")
    return False, state


def open_for_writing(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_RECORD).unlink(missing_ok=True)  # a record of an earlier, shorter run no longer holds


def conclude(run: RunState, status: str, stop: checkpoint.StopRequest, out: Path, keep_checkpoint: bool,
             is_main: bool, record: Callable[[], dict]) -> int:
    """Stopped by a signal: checkpoint and exit 128+N to be resumed. Otherwise write the metrics and
    run.json (`record()`), keeping the checkpoint only if asked; exit 0, a diverged run included."""
    if status == "stopped":
        run.save_checkpoint()
        run.flush_metrics()
        print(f"stopped by signal {stop.signum}: checkpoint saved in {out}; run again to resume", file=sys.stderr)
        return stop.exit_code
    run.flush_metrics()
    if keep_checkpoint:
        run.save_checkpoint()
    if is_main:
        write_json(out / RUN_RECORD, record())
        if not keep_checkpoint:
            checkpoint.remove(out)
    return 0
