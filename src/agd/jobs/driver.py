"""What both training jobs do around their loops: arguments, reuse and resume, distributed start and stop,
stop signals, the conclusion and run.json.

A job (agd.jobs.train, agd.jobs.train_lm) supplies a Job: how to parse its command line, how far a
checkpoint got, how to build its data, model, optimizer and loop, and what its run.json adds.
"""

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from agd.jobs import checkpoint, distributed, run_dir
from agd.jobs.arguments import resolve_device
from agd.jobs.provenance import environment
from agd.optim import registry


class JobError(Exception):
    """A problem found after the arguments were accepted (data, sizes): exit 2 with its message."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def configure_torch(args, device: torch.device) -> None:
    """Threads, and on CUDA TF32 matmuls and cuDNN's autotuner (inputs keep their shapes within a run)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True


@dataclass
class Job:
    """One training job's parts; the driver calls them in order."""

    prog: str
    # argv -> (argparse namespace with every setting filled in, the run's spec); exits 2 on bad input.
    parse_args: Callable[[list[str] | None], tuple]
    # (args, checkpoint state) -> a message if the checkpoint is longer than the run asks, else None.
    overshoot: Callable[[object, dict], str | None]
    # (args, spec, device, ranks, out) -> the job's RunState with its loop (raises JobError).
    build: Callable[..., run_dir.RunState]
    # (args, training, device) -> what the job's run.json adds to the common fields.
    record: Callable[..., dict]
    # (spec, device) -> a message naming the flags if the run's model cannot fit on the device, else None.
    memory_problem: Callable[[object, torch.device], str | None]
    # (args, device) -> a message if the job cannot run on this device, else None.
    device_problem: Callable[[object, torch.device], str | None] = lambda args, device: None
    # (args, training, status) -> printed by the main process once the run ended (completed or diverged).
    ended: Callable[..., None] = lambda args, training, status: None

    def fail(self, message: str) -> int:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        return 2

    def main(self, argv: list[str] | None = None) -> int:
        args, spec = self.parse_args(argv)
        out = Path(args.out)
        device = resolve_device(args)
        problem = (self.device_problem(args, device) or self.memory_problem(spec, device)
                   or run_dir.out_problem(args.out))
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
            return self.own(args, spec, out, device)

    def own(self, args, spec, out: Path, device: torch.device) -> int:
        """The job once it holds --out: what --out already holds decides between a finished run (nothing to do),
        a checkpoint (resume) and nothing (start)."""
        try:
            finished, state = run_dir.read(out, spec.identity(), spec.length, getattr(spec, spec.length),
                                           args.keep_checkpoint)
        except run_dir.RunDirProblem as e:
            return self.fail(str(e))
        if finished:
            return 0
        if state is not None:
            problem = self.overshoot(args, state)
            if problem:
                return self.fail(f"{out} already holds {problem}; use another --out")

        ranks = distributed.Ranks()
        if args.distribute:
            ranks, device = distributed.start(device)
        try:
            return self.train(args, spec, out, device, state, ranks)
        finally:
            distributed.stop()

    def train(self, args, spec, out: Path, device: torch.device, state: dict | None, ranks: distributed.Ranks) -> int:
        configure_torch(args, device)
        torch.manual_seed(args.seed)
        try:
            training = self.build(args, spec, device, ranks, out)
        except JobError as e:
            return self.fail(str(e))
        if state is not None:
            training.load_state_dict(state)
            print(f"resuming {out} at {training.position()}", file=sys.stderr)
        if ranks.is_main:
            run_dir.open_for_writing(out, spec.identity())
        started_at = now()

        with checkpoint.StopRequest() as stop:
            status = training.run(stop)
            code = run_dir.conclude(training, status, stop, out, args.keep_checkpoint, ranks.is_main,
                                    lambda: self.run_record(args, spec, status, training, device, started_at))
        if status == "stopped":
            return code
        if ranks.is_main:
            self.ended(args, training, status)
        return 0

    def run_record(self, args, spec, status: str, training: run_dir.RunState, device: torch.device,
                   started_at: str) -> dict:
        entry = registry.get(spec.optimizer)
        return {
            "status": status,
            "args": vars(args),
            "identity": spec.identity(),
            "family": entry.family,
            "init": entry.init,
            **environment(device),
            **self.record(args, training, device),
            "started_at": started_at,
            "finished_at": now(),
            "wall_time_s": training.elapsed(),
        }
