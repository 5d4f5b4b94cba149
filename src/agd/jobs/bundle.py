"""Many image runs in one process: a bundle pays the start-up (torch, data) once, and runs that share a network
shape and batch size step together as one stacked network (agd.jobs.batched).

    python -m agd.jobs.bundle [EXECUTION FLAGS] --member OUT 'RUN FLAGS' [--member OUT 'RUN FLAGS' ...]

Each member is an agd-train run: its flags (agd.plan.specs.ImageRun) and the shared execution flags
(--device, --threads, --data-dir, --keep-checkpoint, ...) are checked as agd-train checks them, all before
anything is loaded. Every run keeps its own directory, metrics.csv, run.json, train.log and checkpoint, and
resumes exactly: the runs of a cohort are checkpointed together, and a kill between their writes is undone
from each run's previous checkpoint. A finished member is skipped; one that diverges or reaches its epochs
ends alone, the others go on. With --manifest FILE the bundle writes each member's status there once all
have ended. A bundle trains the runs it is given and decides nothing: which runs exist (a tuned rate's
included) is the workflow's plan.
"""

import argparse
import copy
import functools
import os
import shlex
import sys
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import torch

from agd import paths
from agd.io import write_json
from agd.jobs import arguments, checkpoint, memory, run_dir
from agd.jobs.arguments import ImageExecution, input_spec, pad_to
from agd.jobs.batched import BatchingError
from agd.jobs.driver import JobError, configure_torch, now
from agd.jobs.train import JOB, Cohort, Member, load_data, new_member
from agd.plan.specs import ImageRun

PROG = "python -m agd.jobs.bundle"


def fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


def build_parser(prog: str = PROG, description: str = __doc__, job: str = "agd-train",
                 stacking: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--member", nargs=2, action="append", default=[], metavar=("OUT", "FLAGS"),
                        help=f"a run: its directory and its {job} flags (one quoted string)")
    parser.add_argument("--manifest", help="write each member's status here once every member has ended")
    if not stacking:
        return parser
    parser.add_argument("--stack", choices=("auto", "yes", "no"), default="auto",
                        help="step runs of one shape and batch size as one stacked network (auto: on CUDA; on the "
                             "CPU runs train one after another, each exactly as agd-train trains it)")
    return parser


def member_argv(out: str, flags: str, execution: list[str]) -> list[str]:
    return [*shlex.split(flags), *execution, "--out", out]


def flag_names(tokens: list[str]) -> list[str]:
    return [token.split("=", 1)[0] for token in tokens if token.startswith("--")]


def conflicts(members: list[list[str]], execution: list[str], spec=ImageRun,
              job_parser: argparse.ArgumentParser | None = None) -> str | None:
    """What in the members' flags or the shared execution flags the bundle cannot honour, or None: a member's
    FLAGS that cannot be split, that set its directory or an execution flag (shared by every member, given once
    to the bundle), or shared flags that set a run's settings (each member's own) or its directory. Flags are
    spelled in full: an abbreviation could name either kind. `spec` and `job_parser` are the members' job's
    (agd-train's unless given)."""
    settings = {f.flag for f in spec.fields()}
    job_parser = job_parser or arguments.build_parser()
    execution_flags = set(job_parser._option_string_actions) - settings - {"--out", "-h", "--help"}
    for out, flags in members:
        try:
            tokens = shlex.split(flags)
        except ValueError as e:
            return f"--member {out}: its FLAGS {flags!r} cannot be split into flags ({e}); quote them whole"
        for name in flag_names(tokens):
            if name == "--out":
                return f"--member {out}: --out in its FLAGS; the bundle gives each member its directory (OUT), drop it"
            if name in execution_flags:
                return (f"--member {out}: {name} is an execution flag, shared by every member: give it once to the "
                        "bundle, not in a member's FLAGS")
            if name not in settings:
                return (f"--member {out}: {name} is not a run setting (spelled in full: "
                        f"{', '.join(sorted(settings))})")
    for name in flag_names(execution):
        if name not in execution_flags:
            what = ("each member's directory is its OUT" if "--out".startswith(name)
                    else f"{name} is not an execution flag (spelled in full: {', '.join(sorted(execution_flags))}); "
                         "run settings go in each member's FLAGS")
            return f"{name} among the flags shared by every member: {what}"
    return None


def directory_clashes(outs: list[str]) -> str | None:
    """Two members on one directory however spelled (b1, b1/, ./b1, a link to b1), or one inside another's."""
    resolved = {}
    for out in outs:
        real = Path(os.path.realpath(out))
        for other, other_real in resolved.items():
            if real == other_real:
                return f"the members {other} and {out} are one directory ({real}); give each run its own OUT"
            if other_real in real.parents or real in other_real.parents:
                inner, outer = (out, other) if other_real in real.parents else (other, out)
                return f"the member {inner} lies inside the member {outer}; give each run a directory of its own"
        resolved[out] = real
    return None


def parse(argv: list[str] | None, parser: argparse.ArgumentParser | None = None, spec=ImageRun,
          job_arguments=arguments) -> tuple[argparse.Namespace, list[str], list[tuple[ImageRun, ImageExecution]]]:
    """The bundle's own flags, the execution flags every member shares (the rest of argv), and each member's
    (spec, execution), parsed and checked by its job's arguments module (agd-train's unless given)."""
    parser = parser or build_parser()
    bundle, execution = parser.parse_known_args(argv)
    if not bundle.member:
        parser.error("give the runs: --member OUT FLAGS")
    outs = [out for out, _ in bundle.member]
    problem = (conflicts(bundle.member, execution, spec, job_arguments.build_parser()) or directory_clashes(outs)
               or (bundle.manifest and manifest_problem(bundle.manifest, outs)))
    if problem:
        parser.error(f"{problem} (nothing was run)")
    members = []
    for out, flags in bundle.member:
        try:
            members.append(job_arguments.parse_args(member_argv(out, flags, execution)))
        except SystemExit as exit_:
            print(f"{parser.prog}: the member {out} above was refused; nothing was run", file=sys.stderr)
            raise SystemExit(2) from exit_
    if any(execution.distribute for _, execution in members) and len(members) > 1:
        parser.error("--distribute: a bundle of several runs trains in one process; run data-parallel runs alone "
                     "(a bundle of one)")
    return bundle, execution, members


def manifest_problem(manifest: str, outs: list[str]) -> str | None:
    """--manifest must be a file the bundle can write, outside every member's directory and none of them (one not
    made yet included)."""
    problem = paths.file_problem("--manifest", manifest)
    if problem:
        return problem
    real = Path(os.path.realpath(manifest))
    for out in outs:
        member = Path(os.path.realpath(out))
        if member == real:
            return f"--manifest {manifest} is the member {out}'s directory; write it elsewhere"
        if member in real.parents:
            return f"--manifest {manifest} lies inside the member {out}; write it elsewhere"
    return None


class RunLog:
    """A member's lines, in its own train.log and, prefixed by its directory, on the bundle's stdout."""

    def __init__(self, out: Path):
        self.out = out

    def __call__(self, line: str) -> None:
        with open(self.out / "train.log", "a") as log:
            log.write(line + "\n")
        print(f"{self.out}: {line}", flush=True)


def network_shape(spec: ImageRun) -> tuple:
    """Runs that can share one stacked network: one network shape and batch size, on one training set."""
    return spec.arch, spec.dataset, spec.val_size, spec.loss, spec.depth, spec.width, spec.batch_size, spec.bias


def cohort_key(spec: ImageRun, member: Member) -> tuple:
    """Runs that can be stepped together: one network shape and batch size, at one position."""
    return *network_shape(spec), member.at()


def main(argv: list[str] | None = None) -> int:
    bundle, shared, parsed = parse(argv)
    first = parsed[0][1]
    if first.distribute:  # a bundle of one data-parallel run: agd-train under torchrun
        code = JOB.main(member_argv(*bundle.member[0], shared))
        if code == 0 and bundle.manifest and int(os.environ.get("RANK", "0")) == 0:
            write_manifest(bundle.manifest, {Path(first.out): "ended"})
        return code
    device = arguments.resolve_device(first)
    for spec, execution in parsed:
        problem = JOB.memory_problem(spec, device) or run_dir.out_problem(execution.out)
        if problem:
            return fail(f"{paths.shown(execution.out)}: {problem} (nothing in the bundle was run)")
    return holding(PROG, [execution.out for _, execution in parsed], lambda: train_bundle(bundle, parsed, device))


def holding(prog: str, outs: list[str], train: Callable[[], int]) -> int:
    """`train()` once the bundle holds every member's directory; exit 75 (try again later) when another job holds
    one or the storage runs out while training, 2 when a directory cannot be held."""
    def say(message: str) -> None:
        print(f"{prog}: error: {message}", file=sys.stderr)

    with ExitStack() as held:
        try:
            for out in outs:
                held.enter_context(run_dir.RunLock(Path(out)))
        except run_dir.RunDirBusy as e:
            say(f"{e} (nothing in the bundle was run)")
            return run_dir.EX_TEMPFAIL
        except run_dir.RunDirProblem as e:
            say(f"{e} (nothing in the bundle was run)")
            return 2
        try:
            return train()
        except OSError as e:
            problem = run_dir.storage_problem(e)
            if problem is None:
                raise
            say(problem)
            return run_dir.EX_TEMPFAIL


def train_bundle(bundle: argparse.Namespace, parsed: list[tuple[ImageRun, ImageExecution]],
                 device: torch.device) -> int:
    """The bundle once it holds every member's directory."""
    pending = []  # (spec, execution, checkpoint state, inputs) of the members that have work left
    for spec, execution in parsed:
        inputs = functools.cache(functools.partial(JOB.run_inputs, spec, execution, device))
        try:
            finished, state = JOB.held(spec, execution, inputs)
        except (run_dir.RunDirProblem, JobError) as e:
            return fail(f"{e} (nothing in the bundle was run)")
        if not finished:
            pending.append((spec, execution, state, inputs))

    configure_torch(parsed[0][1], device)
    stack = bundle.stack == "yes" or (bundle.stack == "auto" and device.type == "cuda")
    datasets = {}
    members = []
    identities = {}
    for spec, execution, state, inputs in pending:
        key = (spec.dataset, pad_to(spec), spec.val_size, spec.batch_size if execution.synthetic_data else None)
        try:
            if key not in datasets:
                datasets[key] = load_data(spec, execution, device)
            identities[execution.out] = run_dir.identity(spec.identity(), inputs())
        except JobError as e:
            return fail(str(e))
        members.append(build_member(spec, execution, datasets[key], device, state, stack))
    if stack:
        undo_split_checkpoints(members)

    statuses = {Path(execution.out): None for _, execution in parsed}
    with checkpoint.StopRequest() as stop:
        queue = cohorts(members, stack, device)
        while queue:
            cohort = queue.pop(0)
            started = now()
            for member in cohort.members:
                run_dir.start(member, identities[member.execution.out])

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
        write_manifest(bundle.manifest, statuses)
    return 0


def write_manifest(path: str, statuses: dict) -> None:
    write_json(Path(path), {
        "runs": [{"out": str(out), "status": status or "finished before"} for out, status in statuses.items()],
        "finished_at": now(),
    })


def build_member(spec: ImageRun, execution: ImageExecution, data, device: torch.device, state: dict | None,
                 stack: bool) -> Member:
    """A run as agd-train builds it: the same seed before the same model and optimizer, so the same init."""
    torch.manual_seed(spec.seed)
    out = Path(execution.out)
    member = new_member(spec, execution, data, device, out, say=RunLog(out))
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
        groups[network_shape(member.spec)].append(member)
    for group in groups.values():
        behind = min(member.at() for member in group)
        for member in group:
            if member.at() == behind:
                continue
            try:
                previous = checkpoint.load(member.out, torch.device("cpu"), checkpoint.PREVIOUS)
            except run_dir.UNREADABLE as e:  # Damaged included: go on from the checkpoint it has
                member.say(f"cannot go back to {checkpoint.PREVIOUS} ({e}); it goes on from where it stands")
                continue
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
    run_dir.conclude(member, status, stop, member.out, member.execution.keep_checkpoint, True,
                     lambda: JOB.run_record(member.spec, member.execution, status, member, device, started))
    JOB.ended(member, status)


if __name__ == "__main__":
    sys.exit(main())
