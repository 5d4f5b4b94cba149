"""Training jobs whose runs were deleted or changed after the job ended. Such a job's manifest still exists, so
Snakemake would take the job as done while a figure lacks the run, or reads rows that the run never wrote.

The workflow asks such a job for a new set-aside record (`records`), which is an input of the job, so the job trains
again. Making the record moves each damaged run directory aside (kept as it was, in the folder beside the record)
and writes what was found. A job keeps its records as inputs, so that once its runs are whole it is done again.
"""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from agd.io import write_text
from agd.records import RUN_RECORD, RecordProblem, ended
from agd.plan.specs import ImageRun

RECORD = r"\.set-aside-(\d+)\.txt"  # after the manifest's name less .json


def run_problem(out: str, length: str = ImageRun.length) -> str | None:
    """Why the directory of a run that ended no longer holds it, or None; `length` names its spec's length."""
    out = Path(out)
    if not out.is_dir():
        return f"{out} was deleted"
    try:
        found = ended(out, length)
    except RecordProblem as e:
        return str(e)
    return f"{out / RUN_RECORD} was deleted" if found is None else None


def manifest_problems(manifest: str, length: str = ImageRun.length) -> dict[str, str]:
    """{run directory: what no longer holds} for the runs that a finished training job lists in its `manifest`;
    empty when there is no manifest (the job has yet to run) or every run it lists is whole."""
    try:
        listed = [entry["out"] for entry in json.loads(Path(manifest).read_text())["runs"]]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        return {manifest: f"{manifest} cannot be read ({e!r})"}
    problems = {out: run_problem(out, length) for out in listed}
    return {out: problem for out, problem in problems.items() if problem}


def record_path(manifest: str, number: int) -> str:
    return f"{manifest.removesuffix('.json')}.set-aside-{number}.txt"


def records(manifest: str, length: str = ImageRun.length) -> list[str]:
    """The set-aside records of the training job that writes `manifest`: those made before, and a new one when its
    runs are not whole now."""
    folder, stem = Path(manifest).parent, Path(manifest).name.removesuffix(".json")
    named = re.compile(re.escape(stem) + RECORD)
    made = sorted(int(match[1]) for match in map(named.fullmatch, (p.name for p in folder.glob(f"{stem}.*"))) if match)
    paths = [record_path(manifest, number) for number in made]
    if manifest_problems(manifest, length):
        paths.append(record_path(manifest, max(made, default=0) + 1))
    return paths


def set_aside(manifest: str, record: str, length: str = ImageRun.length) -> list[str]:
    """Move the damaged runs of the job that wrote `manifest` into the folder beside `record` (named like it) and
    write to `record` what was found; returns its lines. A deleted run, or one that lost only its run.json, needs
    nothing moved: the job trains it, or ends it from its checkpoint."""
    aside = Path(record).with_suffix("")
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [f"{manifest}: its training job runs again, because of what was found at {when}:"]
    for out, problem in manifest_problems(manifest, length).items():
        if (Path(out) / RUN_RECORD).is_file():
            target = aside / Path(out).relative_to(Path(out).anchor)
            target.parent.mkdir(parents=True, exist_ok=True)
            Path(out).rename(target)
            problem += f"; the run as it was is kept in {target}"
        lines.append(f"- {problem}")
    if len(lines) == 1:
        lines.append("- nothing any more: every run it lists is whole")
    write_text(Path(record), "\n".join(lines) + "\n")
    return lines
