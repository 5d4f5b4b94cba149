"""Many image runs in one process: a bundle pays the start-up (torch, data) once, and runs that share a network
shape and batch size step together as one stacked network (agd.jobs.batched).

    python -m agd.jobs.bundle [EXECUTION FLAGS] --member OUT 'RUN FLAGS' [--member OUT 'RUN FLAGS' ...]
    python -m agd.jobs.bundle [EXECUTION FLAGS] --tune-from OUT... --tune-epochs E --evaluate-seeds S...

Each member is an agd-train run: its flags (agd.plan.specs.ImageRun) and the shared execution flags
(--device, --threads, --data-dir, --keep-checkpoint, ...) are checked as agd-train checks them, all before
anything is loaded. Every run keeps its own directory, metrics.csv, run.json, train.log and checkpoint, and
resumes exactly: the runs of a cohort are checkpointed together, and a kill between their writes is undone
from each run's previous checkpoint. A finished member is skipped; one that diverges or reaches its epochs
ends alone, the others go on. With --manifest FILE the bundle writes each member's status there once all
have ended.

With --tune-from, the members are found rather than given: the finished runs named there are a baseline's
learning-rate grid; the best by --tuning-rule over their first --tune-epochs epochs is run again on each of
--evaluate-seeds for that many epochs, each in the directory its settings name (agd.plan.peers). The manifest
says which rate was chosen, and why.
"""

import argparse
import copy
import math
import os
import shlex
import sys
from collections import defaultdict
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import torch

from agd.io import write_json
from agd.jobs import arguments, checkpoint, memory, run_dir
from agd.jobs.arguments import input_spec, pad_to
from agd.jobs.batched import BatchingError
from agd.jobs.driver import JobError, configure_torch, now
from agd.jobs.train import JOB, Cohort, Member, load_data, new_member
from agd.plan.peers import evaluation_run
from agd.plan.specs import ImageRun
from agd.plan.tuning import TUNING_RULES, best_rate, tuning_score

PROG = "python -m agd.jobs.bundle"


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", nargs=2, action="append", default=[], metavar=("OUT", "FLAGS"),
                        help="a run: its directory and its agd-train flags (one quoted string)")
    parser.add_argument("--tune-from", nargs="+", metavar="OUT", help="the finished runs of a learning-rate grid")
    parser.add_argument("--tune-epochs", type=int, help="the epochs the grid's runs are judged over")
    parser.add_argument("--tuning-rule", choices=TUNING_RULES, default=TUNING_RULES[0])
    parser.add_argument("--evaluate-seeds", nargs="+", type=int, metavar="SEED",
                        help="the seeds the chosen rate runs on")
    parser.add_argument("--manifest", help="write each member's status here once every member has ended")
    parser.add_argument("--stack", choices=("auto", "yes", "no"), default="auto",
                        help="step runs of one shape and batch size as one stacked network (auto: on CUDA; on the "
                             "CPU runs train one after another, each exactly as agd-train trains it)")
    return parser


def member_argv(out: str, flags: str, execution: list[str]) -> list[str]:
    return [*shlex.split(flags), *execution, "--out", out]


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str], list[tuple[argparse.Namespace, ImageRun]]]:
    """The bundle's own flags, the execution flags every member shares (the rest of argv), and each member's
    (namespace, spec)."""
    parser = build_parser()
    bundle, execution = parser.parse_known_args(argv)
    bundle.tuned = None
    if bundle.tune_from:
        if bundle.member or bundle.tune_epochs is None or not bundle.evaluate_seeds:
            parser.error("--tune-from takes --tune-epochs and --evaluate-seeds, and no --member")
        try:
            bundle.tuned, bundle.member = tuned_members(bundle)
        except TuningError as e:
            parser.error(str(e))
    elif not bundle.member:
        parser.error("give the runs: --member OUT FLAGS (or --tune-from a finished grid)")
    members = []
    for out, flags in bundle.member:
        try:
            members.append(arguments.parse_args(member_argv(out, flags, execution)))
        except SystemExit as exit_:
            print(f"{PROG}: the member {out} above was refused; nothing was run", file=sys.stderr)
            raise SystemExit(2) from exit_
    if any(args.distribute for args, _ in members) and len(members) > 1:
        build_parser().error("--distribute: a bundle of several runs trains in one process; run data-parallel "
                             "runs alone (a bundle of one)")
    outs = [out for out, _ in bundle.member]
    if len(set(outs)) != len(outs):
        build_parser().error("two members share one directory; give each run its own OUT")
    return bundle, execution, members


class RunLog:
    """A member's lines, in its own train.log and, prefixed by its directory, on the bundle's stdout."""

    def __init__(self, out: Path):
        self.out = out

    def __call__(self, line: str) -> None:
        with open(self.out / "train.log", "a") as log:
            log.write(line + "\n")
        print(f"{self.out}: {line}", flush=True)


def cohort_key(spec: ImageRun, member: Member) -> tuple:
    """Runs that can be stepped together: one network shape and batch size, at one position."""
    return spec.arch, spec.dataset, spec.loss, spec.depth, spec.width, spec.batch_size, spec.bias, member.at()


def main(argv: list[str] | None = None) -> int:
    bundle, execution, parsed = parse(argv)
    first_args = parsed[0][0]
    if first_args.distribute:  # a bundle of one data-parallel run: agd-train under torchrun
        code = JOB.main(member_argv(*bundle.member[0], execution))
        if code == 0 and bundle.manifest and int(os.environ.get("RANK", "0")) == 0:
            write_manifest(bundle.manifest, {Path(first_args.out): "ended"})
        return code
    device = arguments.resolve_device(first_args)
    for args, spec in parsed:
        problem = JOB.memory_problem(spec, device) or run_dir.out_problem(args.out)
        if problem:
            return fail(f"{args.out}: {problem} (nothing in the bundle was run)")
    with ExitStack() as held:
        try:
            for args, _ in parsed:
                held.enter_context(run_dir.RunLock(Path(args.out)))
        except run_dir.RunDirBusy as e:
            print(f"{PROG}: error: {e} (nothing in the bundle was run)", file=sys.stderr)
            return run_dir.EX_TEMPFAIL
        except run_dir.RunDirProblem as e:
            return fail(f"{e} (nothing in the bundle was run)")
        return train_bundle(bundle, parsed, device)


def train_bundle(bundle: argparse.Namespace, parsed: list[tuple[argparse.Namespace, ImageRun]],
                 device: torch.device) -> int:
    """The bundle once it holds every member's directory."""
    first_args = parsed[0][0]
    pending = []  # (args, spec, checkpoint state) of the members that have work left
    for args, spec in parsed:
        out = Path(args.out)
        try:
            finished, state = run_dir.read(out, spec.identity(), spec.length, spec.epochs, args.keep_checkpoint)
        except run_dir.RunDirProblem as e:
            return fail(f"{e} (nothing in the bundle was run)")
        if finished:
            continue
        if state is not None:
            problem = JOB.overshoot(args, state)
            if problem:
                return fail(f"{out} already holds {problem}; use another --out (nothing in the bundle was run)")
        pending.append((args, spec, state))

    configure_torch(first_args, device)
    stack = bundle.stack == "yes" or (bundle.stack == "auto" and device.type == "cuda")
    datasets = {}
    members = []
    for args, spec, state in pending:
        key = (spec.dataset, pad_to(spec), spec.batch_size if args.synthetic_data else None)
        if key not in datasets:
            try:
                datasets[key] = load_data(args, spec, device)
            except JobError as e:
                return fail(str(e))
        members.append(build_member(args, spec, datasets[key], device, state, stack))
    if stack:
        undo_split_checkpoints(members)

    statuses = {Path(args.out): None for args, _ in parsed}
    started = now()
    with checkpoint.StopRequest() as stop:
        queue = cohorts(members, stack, device)
        while queue:
            cohort = queue.pop(0)
            for member in cohort.members:
                run_dir.open_for_writing(member.out, member.spec.identity())

            def ended(member: Member, status: str) -> None:
                conclude(member, status, stop, started, device)
                statuses[member.out] = status

            if len(cohort.members) > 1:
                cohort.save_checkpoints()  # where a cohort that runs out of memory is taken up again, split
            try:
                status = cohort.run(stop, ended)
            except torch.OutOfMemoryError as error:
                if len(cohort.members) == 1:
                    raise
                status = f"out of memory: {(str(error).strip().splitlines() or [''])[0]}"
            if status.startswith("out of memory"):  # out of the except block: its traceback holds the step's tensors
                stalled, cohort = cohort.members, None
                queue[:0] = split_after_running_out_of_memory(stalled, status, device)
                continue
            if status == "stopped":
                cohort.save_checkpoints()
                for member in cohort.members:
                    member.flush_metrics()
                print(f"stopped by signal {stop.signum}: checkpoints saved; run the bundle again to resume",
                      file=sys.stderr)
                return stop.exit_code
    if bundle.manifest:
        write_manifest(bundle.manifest, statuses, bundle.tuned)
    return 0


def write_manifest(path: str, statuses: dict, tuned: dict | None = None) -> None:
    write_json(Path(path), {
        "runs": [{"out": str(out), "status": status or "finished before"} for out, status in statuses.items()],
        **({"tuned": tuned} if tuned else {}),
        "finished_at": now(),
    })


class TuningError(ValueError):
    """A grid to tune from that is not there or not finished."""


def tuned_members(bundle: argparse.Namespace) -> tuple[dict, list[list[str]]]:
    """The grid's best rate by the tuning rule (and how each rate scored), and its runs on the evaluation seeds."""
    scores, runs = {}, {}
    for out in map(Path, bundle.tune_from):
        try:
            record = run_dir.previous_record(out, ImageRun.length)
        except run_dir.RunDirProblem as e:
            raise TuningError(str(e)) from e
        if record is None:
            raise TuningError(f"{out} holds no finished run (no {run_dir.RUN_RECORD}): train the grid first")
        run = ImageRun.from_args(argparse.Namespace(**record["args"]))
        metrics = pd.read_csv(out / run_dir.METRICS)
        scores[run.lr] = tuning_score(metrics[metrics["epoch"] <= bundle.tune_epochs], bundle.tuning_rule)
        runs[run.lr] = (run, out)
    lr = best_rate(scores)
    chosen, out = runs[lr]
    root = out.parents[len(Path(chosen.run_id()).parts) - 1]  # the runs directory the grid sits in
    members = [[str(root / run.run_id()), shlex.join(run.argv())]
               for run in (evaluation_run(chosen, seed, bundle.tune_epochs) for seed in bundle.evaluate_seeds)]
    tuned = {"optimizer": chosen.optimizer, "lr": lr, "rule": bundle.tuning_rule, "epochs": bundle.tune_epochs,
             "from": str(out),
             "scores": {repr(rate): score if math.isfinite(score) else None for rate, score in sorted(scores.items())}}
    return tuned, members


def build_member(args, spec: ImageRun, data, device: torch.device, state: dict | None, stack: bool) -> Member:
    """A run as agd-train builds it: the same seed before the same model and optimizer, so the same init."""
    torch.manual_seed(spec.seed)
    member = new_member(args, spec, data, device, Path(args.out), say=RunLog(Path(args.out)))
    member.keep_previous = stack  # runs stepped together are checkpointed together
    member.initial = copy.deepcopy(member.state_dict()) if stack and state is not None else None
    if state is not None:
        member.load_state_dict(state)
        member.say(f"resuming at {member.position()}")
    return member


def undo_split_checkpoints(members: list[Member]) -> None:
    """Runs that would step together but stand at different positions because a kill fell between their
    checkpoint writes: those ahead go back to their previous checkpoint, where the others stand."""
    groups = defaultdict(list)
    for member in members:
        spec = member.spec
        groups[spec.arch, spec.dataset, spec.loss, spec.depth, spec.width, spec.batch_size, spec.bias].append(member)
    for group in groups.values():
        behind = min(member.at() for member in group)
        for member in group:
            if member.at() == behind:
                continue
            previous = checkpoint.load(member.out, torch.device("cpu"), checkpoint.PREVIOUS)
            if behind == (0, 0) and member.initial is not None:
                previous = member.initial  # the others were killed before their first checkpoint
            if previous is not None and (previous["epoch"], previous["step_in_epoch"]) == behind:
                member.load_state_dict(previous)
                member.say(f"back to {member.position()}, where the runs it steps with stand")


def cohorts(members: list[Member], stack: bool, device: torch.device) -> list[Cohort]:
    """The members grouped into cohorts (in the order given), each as many runs as fit the memory this job may
    use (agd.jobs.memory); without `stack`, or for a group that cannot be stacked, one cohort per member."""
    if not stack:
        return [Cohort([member]) for member in members]
    groups = defaultdict(list)
    for member in members:
        groups[cohort_key(member.spec, member)].append(member)
    result = []
    budget = memory.job_budget(device) if len(members) > 1 else 0
    for group in groups.values():
        spec = group[0].spec
        info = input_spec(spec)
        run_bytes = memory.stacked_run_bytes(spec, info.input_shape, info.num_classes) if len(group) > 1 else 0
        sizes = memory.cohort_sizes(len(group), run_bytes, budget)
        if len(sizes) > 1:
            print(f"{PROG}: {len(group)} runs of one shape need {run_bytes / 2**30:.2f} GiB each stacked, "
                  f"{budget / 2**30:.2f} GiB are this job's: stacked {'+'.join(map(str, sizes))}", file=sys.stderr)
        for size in sizes:
            part, group = group[:size], group[size:]
            try:
                result.append(Cohort(part))
            except BatchingError as e:
                print(f"{PROG}: {len(part)} runs train one after another: {e}", file=sys.stderr)
                result += [Cohort([member]) for member in part]
    return result


def split_after_running_out_of_memory(members: list[Member], reason: str, device: torch.device) -> list[Cohort]:
    """The runs of a stacked cohort that ran out of memory, as two smaller cohorts, each run back at its last
    checkpoint (a stacked cohort checkpoints as it starts): nothing computed since is kept, so every run goes on
    as if uninterrupted."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    for member in members:
        member.load_state_dict(checkpoint.load(member.out, torch.device("cpu")))
    undo_split_checkpoints(members)
    half = (len(members) + 1) // 2
    print(f"{PROG}: {len(members)} runs stacked ran {reason}; they go on from their checkpoints in cohorts of "
          f"{half} and {len(members) - half}", file=sys.stderr)
    for member in members:
        member.say(f"back to {member.position()}: its cohort ran out of memory and was split")
    return [Cohort(members[:half]), Cohort(members[half:])]


def conclude(member: Member, status: str, stop: checkpoint.StopRequest, started: str, device: torch.device) -> None:
    """Write an ended member's metrics and run.json, as agd-train does."""
    run_dir.conclude(member, status, stop, member.out, member.args.keep_checkpoint, True,
                     lambda: JOB.run_record(member.args, member.spec, status, member, device, started))
    if status == "diverged":
        member.say(f"diverged at epoch {member.epoch - 1}: the loss is not finite; run recorded as diverged")


if __name__ == "__main__":
    sys.exit(main())
