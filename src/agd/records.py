"""A run directory's ended record, read and verified without torch: the training jobs reuse and extend runs
through it, and every table reads runs through it, so a file that disagrees is one status with one reason
everywhere, never a completed run.

A run directory holds identity.json (the run's identity, written when training starts), metrics.csv, and
run.json once the run has ended, with metrics_sha256, the digest of the metrics.csv it ended with. An attempt
to train an ended run longer leaves both as they are while it trains: its rows go to metrics.next.csv. When it
ends it writes run.next.json (the commit point) and then moves both .next files into place, so a kill at any
moment leaves one whole record, the old one or the new one.
"""

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

METRICS = "metrics.csv"
RUN_RECORD = "run.json"
IDENTITY = "identity.json"
NEXT_METRICS = "metrics.next.csv"
NEXT_RECORD = "run.next.json"
ENDED = ("completed", "diverged")
DAMAGED = "damaged"  # the status tables give a run whose files disagree; the reason says how


class RecordProblem(Exception):
    """A run directory's files disagree; the message names the file and the fix."""


def file_digest(path: Path, size: int | None = None) -> str:
    """sha256 of the file's bytes (of its first `size` bytes when given), read in chunks."""
    digest = hashlib.sha256()
    left = os.path.getsize(path) if size is None else size
    with open(path, "rb") as f:
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def read_json(path: Path) -> dict | None:
    """A JSON object file's contents, None if absent; RecordProblem naming the file if it is not one."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as e:
        raise RecordProblem(f"{path} cannot be read ({e}); delete it (and the run directory's other files) to "
                            "train the run again") from e
    if not isinstance(data, dict):
        raise RecordProblem(f"{path} holds no JSON object; delete it to train the run again")
    return data


def record_problem(path: Path, record: dict, metrics: Path, length: str | None = None) -> str | None:
    """How an ended record (`path`) disagrees with itself or with the metrics file it vouches for, or None."""
    missing = [key for key in ("status", "identity", "args", "metrics_sha256") if key not in record]
    if missing:
        return (f"{path} lacks {', '.join(missing)}: no finished run of this version wrote it; delete it to train "
                "the run again")
    args = record["args"]
    lengths = [args.get(length)] if isinstance(args, dict) and length is not None else []
    if (record["status"] not in ENDED or not isinstance(args, dict) or not isinstance(record["identity"], dict)
            or any(not isinstance(value, int) or isinstance(value, bool) for value in lengths)):
        return (f"{path} says status {record['status']!r} with args and identity no finished run writes; delete "
                "it to train the run again")
    try:
        digest = file_digest(metrics) if metrics.exists() else None
    except OSError as e:
        return f"{metrics} cannot be read ({e.strerror}); delete {path} and {metrics} to train the run again"
    if digest != record["metrics_sha256"]:
        change = "is missing" if digest is None else "differs from the one the run ended with (truncated or edited)"
        return (f"{metrics} {change}; {path.name} records its digest. Delete {path} and {metrics} to train the run "
                "again, or restore the file")
    return None


@dataclass(frozen=True)
class Ended:
    """A verified ended record and the metrics file it vouches for."""

    record: dict
    metrics: Path


def ended(out: Path, length: str | None = None) -> Ended | None:
    """The record of the run that ended in `out`, verified against its metrics, or None if none has ended there.
    A longer attempt that committed (run.next.json) but was stopped before moving its files is the record."""
    out = Path(out)
    for record_name, metrics_names in ((NEXT_RECORD, (NEXT_METRICS, METRICS)), (RUN_RECORD, (METRICS,))):
        record = read_json(out / record_name)
        if record is None:
            continue
        metrics = next((out / name for name in metrics_names if (out / name).exists()), out / metrics_names[-1])
        problem = record_problem(out / record_name, record, metrics, length)
        if problem:
            raise RecordProblem(problem)
        return Ended(record, metrics)
    return None


@dataclass(frozen=True)
class RunFiles:
    """What a table needs of a run directory: its status, why it cannot count (if so), and the metrics to read."""

    status: str             # completed, diverged, running, missing or damaged
    reason: str = ""
    metrics: Path | None = None
    record: dict | None = None
    extending: bool = False  # a longer attempt is under way beside an ended record


def inspect(out: Path, length: str | None = None) -> RunFiles:
    """The run in `out` as tables see it: an ended record that verifies (with its `length`, e.g. epochs, when
    given), a run under way (metrics but no record), nothing (missing), or files that disagree (damaged, with
    the reason)."""
    out = Path(out)
    try:
        found = ended(out, length)
    except RecordProblem as e:
        return RunFiles(DAMAGED, str(e))
    if found is not None:
        return RunFiles(found.record["status"], metrics=found.metrics, record=found.record,
                        extending=(out / NEXT_METRICS).exists())
    if (out / METRICS).exists():
        return RunFiles("running", metrics=out / METRICS)
    return RunFiles("missing")
