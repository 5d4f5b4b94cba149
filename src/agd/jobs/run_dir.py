"""What both training jobs do with their --out directory: own it, reuse an ended run, resume a checkpoint, end a
run.

The files and how an ended record is verified are agd.records'. A run's identity is its settings (its spec's)
and what else changes its numbers (its data, read or prepared when first needed, and how it is evaluated);
identity.json, run.json and the checkpoint each record it, and a job asking for another identity is refused with
both named. Starting a job again with the same arguments therefore does nothing, resumes, or extends an ended run
to a longer length; an ended record stays whole until a longer attempt has itself ended. Files that disagree with
each other are refused, never taken for a finished run. One job at a time holds a directory (`RunLock`).
"""

import errno
import math
import os
import pickle
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from agd import paths, records
from agd.data.identity import SYNTHETIC
from agd.jobs import checkpoint, distributed, lock_file
from agd.io import write_csv, write_json
from agd.records import IDENTITY, METRICS, NEXT_METRICS, NEXT_RECORD, RUN_RECORD, RecordProblem

LOCK = ".lock"
UNREADABLE = (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError)
EX_TEMPFAIL = 75  # the directory is busy, or the disk full: try again later
FULL = (errno.ENOSPC, errno.EDQUOT)
# The identity's parts beyond the spec's settings; an identity without them was recorded by an earlier version.
DATA = "data"


class RunDirProblem(Exception):
    """--out holds something this run cannot use; the message says what and how to fix it."""


class RunDirBusy(RunDirProblem):
    """Another job holds --out."""


def out_problem(out: str) -> str | None:
    """What makes `out` unusable as a run directory (empty, a file, under a file, not writable, a name too long),
    or None; decided without writing anything."""
    return paths.directory_problem("--out", out, example="runs/my-run")


def metrics_digest(out: Path, name: str = METRICS) -> str:
    return records.file_digest(Path(out) / name)


class RunLock:
    """An exclusive hold on a run directory for one job's life: a lock on its .lock file, released by the kernel
    when the job dies, however it dies. The file names the holder; it is removed on release (and the directory
    too if this lock made it and it stayed empty), so a refused job leaves nothing behind."""

    def __init__(self, out: Path):
        self.out, self.path = Path(out), Path(out) / LOCK
        self.made = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            fd = lock_file.acquire(self.path, 0o666)
        except lock_file.UnsafeLockFile as e:
            raise RunDirProblem(str(e)) from None
        if fd is None:
            holder = lock_file.holder(self.path) or "a process that has not said"
            raise RunDirBusy(f"{self.out} is in use by another job ({holder}); wait for it to end, or stop it "
                             "and run again to resume")
        self.fd = fd
        lock_file.write_holder(fd, f"pid {os.getpid()} on {socket.gethostname()}: {' '.join(sys.argv)}"[:4000])

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None
        if self.made:
            try:
                self.out.rmdir()  # only if empty: a run that wrote nothing leaves no directory
            except OSError:
                pass

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class RunState:
    """What a training job's loop keeps across the attempts of one run: its metric rows, the wall time
    of every attempt, checkpoint.pt and metrics.csv in --out. A job's subclass adds its model, optimizer
    and position in the run to state_dict and load_state_dict, and names its metrics.csv `columns`."""

    columns: list[str]

    def __init__(self, out: Path, device: torch.device, ranks: distributed.Ranks):
        self.out, self.device, self.ranks = out, device, ranks
        self.identity: dict | None = None  # set by `start`
        self.metrics_file = Path(out) / METRICS  # metrics.next.csv while a longer attempt extends an ended run
        self.rows: list[dict] = []
        self.elapsed_before = 0.0
        self.started = self.last_checkpoint = time.monotonic()
        self.last_flush = -math.inf

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def state_dict(self) -> dict:
        return {"rows": self.rows, "elapsed": self.elapsed(), "identity": self.identity}

    def load_state_dict(self, state: dict) -> None:
        self.rows, self.elapsed_before = state["rows"], state["elapsed"]

    keep_previous = False  # see checkpoint.PREVIOUS

    def save_checkpoint(self) -> None:
        if self.ranks.is_main:
            checkpoint.save(self.out, self.state_dict(), self.keep_previous)
        self.last_checkpoint = time.monotonic()

    def flush_metrics(self) -> None:
        if self.ranks.is_main:
            write_csv(self.metrics_file, self.columns, self.rows)
        self.last_flush = time.monotonic()

    def stop_requested(self, stop: checkpoint.StopRequest) -> bool:
        """On every rank as soon as one has a stop request: all ranks must stop at the same step."""
        return distributed.any_rank(self.ranks, bool(stop), self.device)


def previous_record(out: Path, length: str) -> dict | None:
    """The record of a run that ended in `out`, None if there is none; RunDirProblem naming the file if it
    disagrees with itself or with the metrics it vouches for."""
    try:
        found = records.ended(out, length)
    except RecordProblem as e:
        raise RunDirProblem(str(e)) from e
    return None if found is None else found.record


def flat(identity: dict, prefix: str = "") -> dict:
    """{"data.source": ...} for {"data": {"source": ...}}: an identity's values by dotted name."""
    items = {}
    for key, value in identity.items():
        if isinstance(value, dict):
            items |= flat(value, f"{prefix}{key}.")
        else:
            items[f"{prefix}{key}"] = value
    return items


def identity_problem(where: Path, stored: dict, settings: dict, inputs: Callable[[], dict]) -> str | None:
    """How the identity recorded in `where` differs from this run's, naming both, or None if they agree. The run's
    `settings` are compared first; `inputs()` (its data and evaluation) only once they agree. An identity
    recorded before identities held the data is compared on its settings, and said so."""
    if not isinstance(stored, dict):
        return f"{where} holds no identity; delete it to start over"
    there = flat(stored)
    differ = [key for key in settings if there.get(key) != settings[key]]
    here = settings
    if not differ:
        if DATA not in stored:
            print(f"{where}: recorded before run identities held the data; its settings match, so it is taken as "
                  "this run (its data cannot be checked)", file=sys.stderr)
            return None
        here = flat({**settings, **inputs()})
        differ = [key for key in dict.fromkeys([*there, *here]) if there.get(key) != here.get(key)]
    if not differ:
        return None
    return (f"{where.parent} holds a different run: {where.name} records "
            f"{', '.join(f'{key}={there.get(key)!r}' for key in differ)}; this job's run has "
            f"{', '.join(f'{key}={here.get(key)!r}' for key in differ)}. Use another --out, or delete that "
            "directory to start over")


def read(out: Path, settings: dict, inputs: Callable[[], dict], length: str, value: int,
         keep_checkpoint: bool) -> tuple[bool, dict | None]:
    """(finished, checkpoint state): finished when --out already holds this run at this `length` (the
    argument that sets how long it trains, e.g. epochs) or longer, or a diverged one; else the checkpoint to resume
    from, if any, read into host memory and verified. The run is known by its `settings` and by `inputs()` (its
    data and evaluation; called only when --out holds something to compare them with). Raises RunDirProblem when
    --out holds another run, files that disagree (a record that no finished run wrote, metrics changed since, a
    damaged checkpoint, a metrics.csv that no run here wrote) or is unreadable."""
    out = Path(out)
    try:
        roll_forward(out)
        found = records.ended(out, length)
        owner = records.read_json(out / IDENTITY)
    except RecordProblem as e:
        raise RunDirProblem(str(e)) from e
    try:
        state = checkpoint.load(out, torch.device("cpu"))
    except checkpoint.Damaged as e:
        raise RunDirProblem(f"{e}; delete it to start the run over (or from its previous checkpoint, if one is "
                            "kept)") from e
    except UNREADABLE as e:
        raise RunDirProblem(f"cannot read {out / checkpoint.CHECKPOINT} ({e}); delete it to start the run over "
                            "(or from its previous checkpoint, if one is kept)") from e
    record = found.record if found else None
    stored = {out / IDENTITY: owner, out / RUN_RECORD: record and record["identity"],
              out / checkpoint.CHECKPOINT: state and (state.get("identity") or "none")}
    for where, recorded in stored.items():  # None: that file is absent
        problem = recorded is not None and identity_problem(where, recorded, settings, inputs)
        if problem:
            raise RunDirProblem(problem)
    if record is not None and DATA not in record["identity"]:  # recorded before identities held the data
        then, now = bool(record["args"].get("synthetic_data")), synthetic(inputs())
        if then != now:
            raise RunDirProblem(f"{out} holds a run trained on {'synthetic' if then else 'real'} data (its "
                                f"{RUN_RECORD} says so), this job's is on {'synthetic' if now else 'real'} data; use "
                                "another --out, or delete that directory to start over")
    if record is not None:
        # A finished run at least as long holds this one (epoch e does not depend on the epochs after it).
        if record["status"] == "diverged" or record["args"][length] >= value:
            print(f"{out}: run already {record['status']} ({length} {record['args'][length]}), nothing to do")
            if not keep_checkpoint and not (out / NEXT_METRICS).exists():
                checkpoint.remove(out)  # a longer attempt under way keeps its checkpoint
            return True, None
    if record is None and state is None and owner is None and (out / METRICS).exists():
        raise RunDirProblem(f"{out / METRICS} was not written by this run (no {RUN_RECORD}, checkpoint or {IDENTITY} "
                            "beside it); move it away or use another --out")
    return False, state


def roll_forward(out: Path) -> None:
    """Finish moving a longer attempt's committed files into place (a kill can fall between the moves)."""
    if (out / NEXT_RECORD).exists() and records.ended(out) is not None:
        if (out / NEXT_METRICS).exists():
            os.replace(out / NEXT_METRICS, out / METRICS)
        os.replace(out / NEXT_RECORD, out / RUN_RECORD)


def synthetic(inputs: dict) -> bool:
    """Whether a run's inputs are made-up data (an image run's --synthetic-data, or a synthetic text)."""
    data = inputs.get(DATA, {})
    return data.get("source") == SYNTHETIC or data.get(SYNTHETIC) is True


def identity(settings: dict, inputs: dict) -> dict:
    """A run's whole identity: its settings and what else changes its numbers."""
    return {**settings, **inputs}


def start(run: RunState, identity: dict) -> None:
    """Mark --out as this run's before its first metric row is written, and start its clock there: a bundle
    builds every member before the first trains, and a member's time_s counts its own training only. An ended
    record is left whole while a longer attempt trains: that attempt's rows go to metrics.next.csv until it
    ends (see `conclude`)."""
    run.identity = identity
    run.started = run.last_checkpoint = time.monotonic()
    if not run.ranks.is_main:
        return
    run.out.mkdir(parents=True, exist_ok=True)
    if (run.out / RUN_RECORD).exists():
        run.metrics_file = run.out / NEXT_METRICS
    write_json(run.out / IDENTITY, identity)


def conclude(run: RunState, status: str, stop: checkpoint.StopRequest, out: Path, keep_checkpoint: bool,
             is_main: bool, record: Callable[[], dict]) -> int:
    """Stopped by a signal: checkpoint and exit 128+N to be resumed. Otherwise write the metrics and
    run.json (`record()`), keeping the checkpoint only if asked; exit 0, a diverged run included. A longer
    attempt over an ended run commits its record as run.next.json, then moves its files into place."""
    if status == "stopped":
        run.save_checkpoint()
        run.flush_metrics()
        print(f"stopped by signal {stop.signum}: checkpoint saved in {out}; run again to resume", file=sys.stderr)
        return stop.exit_code
    run.flush_metrics()
    if keep_checkpoint:
        run.save_checkpoint()
    if is_main:
        ended = {**record(), "metrics_sha256": records.file_digest(run.metrics_file)}
        if run.metrics_file.name == NEXT_METRICS:
            write_json(out / NEXT_RECORD, ended)
            roll_forward(out)
            run.metrics_file = out / METRICS
        else:
            write_json(out / RUN_RECORD, ended)
        if not keep_checkpoint:
            checkpoint.remove(out)
    return 0


def storage_problem(error: OSError) -> str | None:
    """What to tell the user when a write failed because the disk (or quota) is full, else None."""
    if error.errno not in FULL:
        return None
    where = f" writing {error.filename}" if error.filename else ""
    return (f"{error.strerror}{where}. Every file is written whole or not at all, so nothing was half-written: "
            "free some space and run the same command again to resume from the last checkpoint")
