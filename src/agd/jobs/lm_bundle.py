"""Many GPT runs in one process, one after another, each exactly as agd-train-lm trains it: a bundle pays the
start-up (torch, its compiler's import, the text) once instead of once per run.

    python -m agd.jobs.lm_bundle [EXECUTION FLAGS] --member OUT 'RUN FLAGS' [--member OUT 'RUN FLAGS' ...]

Each member is an agd-train-lm run: its flags (agd.plan.specs.LMRun) and the shared execution flags are checked
as agd-train-lm checks them, all before anything is trained. Every run keeps its own directory, metrics.csv,
run.json, train.log and checkpoint: a finished member is skipped, a stopped one resumes where it stood. A run
stopped by a signal stops the bundle (exit 128+N; run it again to go on); with --manifest FILE the bundle writes
each member's status there once all have ended. Like agd.jobs.bundle it trains the runs it is given and decides
nothing.
"""

import contextlib
import os
import sys
from pathlib import Path

from agd import paths
from agd.jobs import lm_arguments, run_dir
from agd.jobs.arguments import resolve_device
from agd.jobs.bundle import build_parser as bundle_parser
from agd.jobs.bundle import holding, member_argv, write_manifest
from agd.jobs.bundle import parse as bundle_parse
from agd.jobs.train_lm import JOB
from agd.plan.specs import LMRun
from agd.records import RUN_RECORD, read_json

PROG = "python -m agd.jobs.lm_bundle"


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def build_parser():
    return bundle_parser(PROG, __doc__, LMRun.program, stacking=False)


def parse(argv: list[str] | None):
    """The bundle's own flags, the execution flags every member shares, and each member's (spec, execution)."""
    return bundle_parse(argv, build_parser(), LMRun, lm_arguments)


class Tee:
    """A stream that writes to the bundle's own and to a member's train.log."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.log.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.log.flush()
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def logged_to(out: Path):
    """What a member prints, also in its own train.log (as a job of its own would have it)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.log", "a", buffering=1) as log, \
            contextlib.redirect_stdout(Tee(sys.stdout, log)), contextlib.redirect_stderr(Tee(sys.stderr, log)):
        yield


def main(argv: list[str] | None = None) -> int:
    bundle, shared, parsed = parse(argv)
    first = parsed[0][1]
    if first.distribute:  # a bundle of one data-parallel run: agd-train-lm under torchrun
        code = JOB.main(member_argv(*bundle.member[0], shared))
        if code == 0 and bundle.manifest and int(os.environ.get("RANK", "0")) == 0:
            write_manifest(bundle.manifest, {Path(first.out): status_of(Path(first.out))})
        return code
    device = resolve_device(first)
    for spec, execution in parsed:
        problem = (JOB.device_problem(execution, device) or JOB.memory_problem(spec, device)
                   or run_dir.out_problem(execution.out))
        if problem:
            return fail(f"{paths.shown(execution.out)}: {problem} (nothing in the bundle was run)")
    return holding(PROG, [execution.out for _, execution in parsed],
                   lambda: train_members(parsed, device, bundle.manifest))


def train_members(parsed: list, device, manifest: str | None) -> int:
    """The members one after another, once the bundle holds their directories."""
    for spec, execution in parsed:
        out = Path(execution.out)
        with logged_to(out):
            code = JOB.own(spec, execution, out, device)
        if code != 0:  # stopped by a signal (resumable) or refused: the runs before it are kept
            return code
    if manifest:
        write_manifest(manifest, {Path(execution.out): status_of(Path(execution.out)) for _, execution in parsed})
    return 0


def status_of(out: Path) -> str:
    record = read_json(out / RUN_RECORD)
    return record.get("status", "ended") if isinstance(record, dict) else "ended"


if __name__ == "__main__":
    sys.exit(main())
