"""What both training jobs do with their --out directory: own it, reuse a finished run, resume a checkpoint, end a
run.

A run directory holds identity.json (the run's settings, written when training starts), metrics.csv, run.json
once the run has ended (with the digest of the metrics.csv it ended with), and checkpoint.pt while it is under
way (or after, with --keep-checkpoint). Starting a job again with the same arguments therefore does nothing,
resumes, or extends a finished run to a longer length; files that disagree with each other are refused, never
taken for a finished run. One job at a time holds a directory (`RunLock`).
"""

import hashlib
import json
import math
import os
import pickle
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from agd.jobs import checkpoint, distributed, lock_file
from agd.io import write_csv, write_json

METRICS = "metrics.csv"
RUN_RECORD = "run.json"
IDENTITY = "identity.json"
LOCK = ".lock"
ENDED = ("completed", "diverged")
UNREADABLE = (OSError, ValueError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError)
EX_TEMPFAIL = 75  # the directory is busy: try again later


class RunDirProblem(Exception):
    """--out holds something this run cannot use; the message says what and how to fix it."""


class RunDirBusy(RunDirProblem):
    """Another job holds --out."""


def out_problem(out: str) -> str | None:
    """What makes `out` unusable as a run directory (empty, a file, under a file, not writable), or None;
    decided without writing anything."""
    if not out.strip():
        return "--out is empty: give the run's directory, e.g. --out runs/my-run"
    path = Path(out)
    if path.exists() and not path.is_dir():
        return f"--out {out} is a file, not a directory; use another --out"
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"--out {out}: {existing} is a file, so nothing can be made under it; use another --out"
    try:
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".agd-probe."))
    except OSError as e:
        return f"--out {out}: cannot write in {existing} ({e.strerror}); choose a directory you can write"
    return None


def metrics_digest(out: Path) -> str:
    return hashlib.sha256((Path(out) / METRICS).read_bytes()).hexdigest()


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


def previous_record(out: Path, length: str) -> dict | None:
    """The run.json of a run that ended in `out`, None if there is none; RunDirProblem naming the file if it
    disagrees with itself or with the metrics.csv beside it."""
    record = _json_file(Path(out) / RUN_RECORD)
    problem = record_problem(out, record, length) if record is not None else None
    if problem:
        raise RunDirProblem(problem)
    return record


def _json_file(path: Path) -> dict | None:
    """A JSON object file's contents, None if absent; RunDirProblem naming the file if it is not one."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunDirProblem(f"{path} cannot be read ({e}); delete it (and the run directory's other files) to "
                            "train the run again") from e
    if not isinstance(data, dict):
        raise RunDirProblem(f"{path} holds no JSON object; delete it to train the run again")
    return data


def record_problem(out: Path, record: dict, length: str) -> str | None:
    """How a run.json disagrees with itself or with the metrics.csv beside it, or None."""
    where = Path(out) / RUN_RECORD
    missing = [key for key in ("status", "identity", "args") if key not in record]
    if missing:
        return f"{where} lacks {', '.join(missing)}: no finished run wrote it; delete it to train the run again"
    if record["status"] not in ENDED or not isinstance(record["args"], dict) or length not in record["args"]:
        return (f"{where} says status {record['status']!r} without its {length}: no finished run wrote it; delete it "
                "to train the run again")
    digest = record.get("metrics_sha256")
    metrics = Path(out) / METRICS
    if digest is not None and (not metrics.exists() or metrics_digest(out) != digest):
        change = ("is missing" if not metrics.exists()
                  else "differs from the one the run ended with (truncated or edited)")
        return (f"{metrics} {change}; {RUN_RECORD} records its digest. Delete {where} and {metrics} to train the "
                "run again, or restore the file")
    return None


def read(out: Path, identity: dict, length: str, value: int, keep_checkpoint: bool) -> tuple[bool, dict | None]:
    """(finished, checkpoint state): finished when --out already holds this run at this `length` (the
    argument that sets how long it trains, e.g. epochs) or longer, or a diverged one; else the checkpoint to resume
    from, if any, read into host memory. Raises RunDirProblem when --out holds another run, files that disagree
    (a run.json that no finished run wrote, a metrics.csv changed since, one that no run here wrote) or is
    unreadable."""
    out = Path(out)
    record = _json_file(out / RUN_RECORD)
    owner = _json_file(out / IDENTITY)
    try:
        state = checkpoint.load(out, torch.device("cpu"))
    except UNREADABLE as e:
        raise RunDirProblem(f"cannot read {out / checkpoint.CHECKPOINT} ({e}); delete it to start the run over "
                            "(or from its previous checkpoint, if one is kept)") from e
    if owner is not None and owner != identity:
        raise RunDirProblem(f"{out} holds a different run ({IDENTITY} was made with other arguments); use another "
                            "--out, or delete that directory to start over")
    if record is not None:
        if record.get("identity") != identity:
            raise RunDirProblem(f"{out} holds a different run ({RUN_RECORD} was made with other arguments); "
                                "use another --out, or delete that directory to start over")
        problem = record_problem(out, record, length)
        if problem:
            raise RunDirProblem(problem)
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
    if record is None and state is None and owner is None and (out / METRICS).exists():
        raise RunDirProblem(f"{out / METRICS} was not written by this run (no {RUN_RECORD}, checkpoint or {IDENTITY} "
                            "beside it); move it away or use another --out")
    return False, state


def open_for_writing(out: Path, identity: dict) -> None:
    """Mark --out as this run's before its first metric row is written."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_RECORD).unlink(missing_ok=True)  # a record of an earlier, shorter run no longer holds
    write_json(out / IDENTITY, identity)


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
        write_json(out / RUN_RECORD, {**record(), "metrics_sha256": metrics_digest(out)})
        if not keep_checkpoint:
            checkpoint.remove(out)
    return 0
