"""What an ended run leaves in its directory, and how to tell the files still agree, read without torch: the
training jobs refuse a directory that fails these checks, and the workflow trains its run again.

run.json is written when a run ends, with its status, identity, arguments and `metrics_sha256`, the digest of the
metrics.csv it ended with; a metrics.csv that differs from that digest was changed after the run ended.
"""

import hashlib
from pathlib import Path

METRICS = "metrics.csv"
RUN_RECORD = "run.json"
ENDED = ("completed", "diverged")


def metrics_digest(out: Path) -> str:
    return hashlib.sha256((Path(out) / METRICS).read_bytes()).hexdigest()


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
