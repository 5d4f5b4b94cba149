"""What both training jobs do around their loops: arguments, reuse and resume, distributed start and stop,
stop signals, the conclusion and run.json.

A job (agd.jobs.train, agd.jobs.train_lm) supplies a Job: how to parse its command line, how far a
checkpoint got, how to build its data, model, optimizer and loop, and what its run.json adds.
"""

import contextlib
import dataclasses
import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from agd.jobs import checkpoint, distributed, run_dir
from agd.jobs.arguments import Execution, resolve_device
from agd.jobs.provenance import environment
from agd.optim import registry


class JobError(Exception):
    """A problem found after the arguments were accepted (data, sizes): exit 2 with its message."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def configure_torch(execution: Execution, device: torch.device) -> None:
    """Threads, and on CUDA TF32 matmuls and cuDNN's autotuner (inputs keep their shapes within a run)."""
    if execution.threads:
        torch.set_num_threads(execution.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


@dataclass
class Job:
    """One training job's parts; the driver calls them in order."""

    prog: str
    # argv -> (the run's spec with every setting filled in, its Execution); exits 2 on bad input.
    parse_args: Callable[[list[str] | None], tuple]
    # (spec, checkpoint state) -> a message if the checkpoint is longer than the run asks, else None.
    overshoot: Callable[[object, dict], str | None]
    # (spec, execution, device, ranks, out) -> the job's RunState with its loop (raises JobError).
    build: Callable[..., run_dir.RunState]
    # (training, device) -> what the job's run.json adds to the common fields.
    record: Callable[..., dict]
    # (spec, device) -> a message naming the flags if the run's model cannot fit on the device, else None.
    memory_problem: Callable[[object, torch.device], str | None]
    # (spec, execution, device) -> what besides the spec's settings changes the run's numbers, for its identity:
    # its data (downloaded or prepared first if need be) and how it is evaluated (raises RuntimeError, ValueError
    # or OSError naming the problem).
    inputs: Callable[..., dict] = lambda spec, execution, device: {}
    # (execution, device) -> a message if the job cannot run on this device, else None.
    device_problem: Callable[[Execution, torch.device], str | None] = lambda execution, device: None
    # (training, status) -> printed by the main process once the run ended (completed or diverged).
    ended: Callable[..., None] = lambda training, status: None

    def fail(self, message: str) -> int:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        return 2

    def main(self, argv: list[str] | None = None) -> int:
        spec, execution = self.parse_args(argv)
        out = Path(execution.out)
        device = resolve_device(execution)
        problem = (self.device_problem(execution, device) or self.memory_problem(spec, device)
                   or run_dir.out_problem(execution.out))
        if problem:
            return self.fail(problem)
        # Under torchrun the processes share one directory, which the first one holds for all.
        try:
            lock = run_dir.RunLock(out) if distributed.is_first_process() else contextlib.nullcontext()
        except run_dir.RunDirBusy as e:
            self.fail(str(e))
            return run_dir.EX_TEMPFAIL
        except run_dir.RunDirProblem as e:
            return self.fail(str(e))
        with lock:
            try:
                return self.own(spec, execution, out, device)
            except OSError as e:
                problem = run_dir.storage_problem(e)
                if problem is None:
                    raise
                self.fail(problem)
                return run_dir.EX_TEMPFAIL

    def held(self, spec, execution: Execution, inputs: Callable[[], dict]) -> tuple[bool, dict | None]:
        """What --out already holds, once the job holds it: a finished run (True, None), a checkpoint to resume
        (False, its state) or nothing (False, None). The run is known by its settings and `inputs()` (its data and
        evaluation). Raises RunDirProblem when that is another run, or this one trained longer than asked, and
        JobError when its inputs cannot be read."""
        out = Path(execution.out)
        finished, state = run_dir.read(out, spec.identity(), inputs, spec.length, getattr(spec, spec.length),
                                       execution.keep_checkpoint)
        problem = self.overshoot(spec, state) if state is not None else None
        if problem:
            raise run_dir.RunDirProblem(f"{out} already holds {problem}; use another --out")
        return finished, state

    def own(self, spec, execution: Execution, out: Path, device: torch.device) -> int:
        """The job once it holds --out: a finished run (nothing to do), a checkpoint (resume) or nothing (start)."""
        inputs = functools.cache(lambda: self.run_inputs(spec, execution, device))
        try:
            finished, state = self.held(spec, execution, inputs)
        except (run_dir.RunDirProblem, JobError) as e:
            return self.fail(str(e))
        if finished:
            return 0

        ranks = distributed.Ranks()
        if execution.distribute:
            ranks, device = distributed.start(device)
        try:
            return self.train(spec, execution, out, device, state, ranks, inputs)
        finally:
            distributed.stop()

    def run_inputs(self, spec, execution: Execution, device: torch.device) -> dict:
        try:
            return self.inputs(spec, execution, device)
        except (RuntimeError, ValueError, OSError) as e:
            raise JobError(str(e)) from e

    def train(self, spec, execution: Execution, out: Path, device: torch.device, state: dict | None,
              ranks: distributed.Ranks, inputs: Callable[[], dict]) -> int:
        configure_torch(execution, device)
        torch.manual_seed(spec.seed)
        try:
            training = self.build(spec, execution, device, ranks, out)
            identity = run_dir.identity(spec.identity(), inputs())
        except JobError as e:
            return self.fail(str(e))
        if state is not None:
            training.load_state_dict(state)
            print(f"resuming {out} at {training.position()}", file=sys.stderr)
        run_dir.start(training, identity)
        started_at = now()

        with checkpoint.StopRequest() as stop:
            status = training.run(stop)
            code = run_dir.conclude(training, status, stop, out, execution.keep_checkpoint, ranks.is_main,
                                    lambda: self.run_record(spec, execution, status, training, device, started_at))
        if status == "stopped":
            return code
        if ranks.is_main:
            self.ended(training, status)
        return 0

    def run_record(self, spec, execution: Execution, status: str, training: run_dir.RunState, device: torch.device,
                   started_at: str) -> dict:
        entry = registry.get(spec.optimizer)
        return {
            "status": status,
            "args": spec.settings() | dataclasses.asdict(execution),
            "identity": training.identity,
            "family": entry.family,
            "init": entry.initialisation(spec),
            **environment(device),
            **self.record(training, device),
            "started_at": started_at,
            "finished_at": now(),
            "wall_time_s": training.elapsed(),
        }
