"""Lease GPUs through lock files, then exec a command that holds the locks for its whole life.

Each GPU has --slots-per-gpu lock files, one per job slot (gpu<id>.lock, gpu<id>.1.lock, ...): a whole-GPU job
holds all of a GPU's slots, a shared job (--share) one. Shared jobs pack: each takes a slot of the GPU that
already runs the most jobs and still has a free slot, so that whole GPUs stay whole for the jobs that need
them. A whole-GPU job that finds too few whole GPUs waits, as long as it takes unless --timeout says
otherwise, and reserves the GPUs it waits for (gpu<id>.reserve.lock): no new shared job starts on a reserved
GPU, so its shared jobs drain instead of being replaced. The locks are flock(2) locks, released by the kernel
however the job ends. Lock files live in a directory of the user's own, writable by nobody else, and are
opened as agd.jobs.lock_file opens every lock file: never through a link.
"""

import argparse
import os
import pwd
import random
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from agd.jobs import lock_file
from agd.plan.checks import AT_LEAST_ONE, NOT_NEGATIVE, SLOTS_PER_GPU, number_problem

PROG = "agd-gpu-lease"
EX_TEMPFAIL = 75
# Seconds between two looks at the locks while waiting: jittered so that waiting jobs do not move in step.
BACKOFF_SECONDS = (0.2, 1.0)
# What CUDA_VISIBLE_DEVICES accepts: an index (ASCII digits: "٠" or "０" is no index), or a GPU or MIG UUID.
DEVICE_ID = re.compile(r"[0-9]+|(GPU|MIG)-[0-9A-Za-z-]+(/[0-9]+)*", re.ASCII)
# Set for the leased command: a job that finds it set but no CUDA device refuses rather than train on the CPU.
LEASED = "AGD_LEASED_GPUS"
# Set for the leased command: the slots it holds of its GPU's, e.g. 1/4, so that it keeps to its share of memory.
SLOTS = "AGD_GPU_SLOTS"


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class LeaseError(ValueError):
    """The environment names GPUs or a lock directory that cannot be used: exit 2 with the message."""


class GpusBusy(TimeoutError):
    """No lease within --timeout; the message says what holds the GPUs."""


# --- which GPUs ---


def nvidia_smi_gpus(env: Mapping[str, str]) -> tuple[list[tuple[str, str]], str]:
    """(index, UUID) of every GPU nvidia-smi lists, and in words where they came from or why there are none."""
    nvidia_smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if nvidia_smi is None:
        return [], "AGD_GPU_IDS is unset and nvidia-smi is not on PATH"
    try:
        result = subprocess.run([nvidia_smi, "--query-gpu=index,uuid", "--format=csv,noheader"],
                                capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return [], f"{nvidia_smi} --query-gpu failed"
    gpus = []
    for line in result.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if fields[0]:
            gpus.append((fields[0], fields[1] if len(fields) > 1 else ""))
    return gpus, "nvidia-smi lists none" if not gpus else "listed by nvidia-smi"


def available_devices(env: Mapping[str, str] = os.environ) -> list[str]:
    """Candidate GPU ids in order of preference: AGD_GPU_IDS if set and non-empty, else what nvidia-smi lists.
    Raises LeaseError for an id that is neither an index nor a GPU/MIG UUID, and for two ids of one device."""
    listed = env.get("AGD_GPU_IDS", "")
    if not listed.strip():
        return [index for index, _ in nvidia_smi_gpus(env)[0]]
    ids = [d.strip() for d in listed.split(",") if d.strip()]
    bad = [d for d in ids if not DEVICE_ID.fullmatch(d)]
    if bad:
        raise LeaseError(f"AGD_GPU_IDS={listed!r}: {', '.join(map(repr, bad))} is not a GPU index (0, 1, ...) or "
                         "a GPU-/MIG- UUID as nvidia-smi -L prints them; set AGD_GPU_IDS=0,1 or unset it")
    uuid_index = ({uuid.lower(): index for index, uuid in nvidia_smi_gpus(env)[0]}
                  if any(not d.isdigit() for d in ids) else {})
    devices, named = [], {}
    for d in ids:
        device = str(int(d)) if d.isdigit() else d
        key = device if d.isdigit() else uuid_index.get(d.lower(), d.lower())
        if key in named:
            if named[key] == d:
                continue  # the same spelling twice: one device, said twice
            raise LeaseError(f"AGD_GPU_IDS={listed!r}: {named[key]!r} and {d!r} name the same GPU; give each GPU "
                             "once")
        named[key] = d
        devices.append(device)
    return devices


# --- where the locks live ---


def default_lock_dir() -> Path:
    """One per user and node, whatever the environment says: every job of the user must find the same locks."""
    return Path("/tmp") / f"agd-gpu-locks-{os.geteuid()}"


def owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def own_lock_dir(lock_dir: Path, variable: str | None) -> Path:
    """`lock_dir`, made (mode 0700) if missing; LeaseError unless it is a directory of this user's own that nobody
    else can write or replace, and this user can hold lock files in. `variable` names where it was set."""
    named = f"{variable}={lock_dir}" if variable else f"the default lock directory {lock_dir}"
    fix = (f"point {variable} at a directory of your own on this node, or unset it" if variable else
           "set AGD_GPU_LOCK_DIR to a directory of your own on this node (e.g. ~/.agd-gpu-locks)")
    try:
        lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(lock_dir)
    except OSError as e:
        raise LeaseError(f"{named}: cannot hold lock files there ({e.strerror}); {fix}") from e
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise LeaseError(f"{named} is {'a symbolic link' if stat.S_ISLNK(info.st_mode) else 'not a directory'}: "
                         f"lock files are kept only in a directory of your own; {fix}")
    if info.st_uid != os.geteuid():
        raise LeaseError(f"{named} belongs to {owner_name(info.st_uid)}, not to you: whoever made it could read, "
                         f"hold or delete your GPU locks. Remove it if it is yours to remove, or {fix}")
    if info.st_mode & 0o022:
        raise LeaseError(f"{named} can be written by others (mode {stat.S_IMODE(info.st_mode):o}): they could hold "
                         f"or delete your GPU locks; chmod 700 {lock_dir}, or {fix}")
    parent = os.lstat(lock_dir.resolve().parent)
    if parent.st_mode & 0o022 and not parent.st_mode & stat.S_ISVTX and parent.st_uid != os.geteuid():
        raise LeaseError(f"{named} sits in {lock_dir.resolve().parent}, which others can write without the sticky "
                         f"bit: they could replace it; {fix}")
    try:
        fd, probe = tempfile.mkstemp(dir=lock_dir, prefix=".probe.")
    except OSError as e:
        raise LeaseError(f"{named}: cannot hold lock files there ({e.strerror}); {fix}") from e
    os.close(fd)
    os.unlink(probe)
    return lock_dir


# --- the locks of a set of GPUs ---


class Board:
    """The lock files of `devices` with `slots` job slots each, as one job sees them."""

    def __init__(self, lock_dir: Path, devices: Sequence[str], slots: int):
        self.lock_dir, self.devices, self.slots = Path(lock_dir), list(devices), slots
        self.reserved: dict[str, int] = {}  # this job's reservations: device -> held descriptor

    def path(self, device: str, slot: int | str) -> Path:
        """A device's lock file for one of its job slots (slot 0's is gpu<id>.lock), or its reservation's."""
        name = device.replace("/", "_")  # a MIG instance's UUID may hold slashes
        return self.lock_dir / (f"gpu{name}.lock" if slot == 0 else f"gpu{name}.{slot}.lock")

    def lock(self, device: str, slot: int | str) -> int | None:
        fd = lock_file.acquire(self.path(device, slot))
        if fd is not None:
            lock_file.write_holder(fd, f"{os.getpid()}\n")
        return fd

    def free(self, device: str, slot: int | str) -> bool:
        fd = lock_file.acquire(self.path(device, slot))
        if fd is None:
            return False
        os.close(fd)
        return True

    def held_slots(self, device: str) -> int:
        return sum(not self.free(device, slot) for slot in range(self.slots))

    def reserved_by_another(self, device: str) -> bool:
        return device not in self.reserved and not self.free(device, "reserve")

    def take_slot(self) -> list[tuple[str, int]] | None:
        """One slot of the GPU that runs the most jobs and has a slot free (best fit), not of a reserved GPU."""
        held = {device: self.held_slots(device) for device in self.devices if not self.reserved_by_another(device)}
        for device in sorted(held, key=lambda d: -held[d]):
            if held[device] == self.slots:
                continue
            for slot in range(self.slots):
                fd = self.lock(device, slot)
                if fd is not None:
                    return [(device, fd)]
        return None

    def take_whole(self, count: int) -> list[tuple[str, int]] | None:
        """All slots of `count` GPUs (those this job reserved first), or nothing."""
        held: list[tuple[str, int]] = []
        taken = 0
        for device in sorted(self.devices, key=lambda d: d not in self.reserved):
            fds = []
            for slot in range(self.slots):
                fd = self.lock(device, slot)
                if fd is None:
                    break
                fds.append(fd)
            if len(fds) < self.slots:
                for fd in fds:
                    os.close(fd)
                continue
            held += [(device, fd) for fd in fds]
            taken += 1
            if taken == count:
                return held
        for _, fd in held:
            os.close(fd)
        return None

    def reserve(self, count: int) -> None:
        """Hold reservations on `count` GPUs to wait for, those with the fewest jobs to drain first; kept once made."""
        if len(self.reserved) >= count:
            return
        others = [device for device in self.devices if device not in self.reserved]
        for device in sorted(others, key=self.held_slots):
            fd = self.lock(device, "reserve")
            if fd is not None:
                self.reserved[device] = fd
                if len(self.reserved) == count:
                    return

    def release_reservations(self) -> None:
        for fd in self.reserved.values():
            os.close(fd)
        self.reserved = {}

    def describe(self) -> str:
        """What holds each GPU, in words: free, N shared jobs, a whole-GPU job; and who reserved it."""
        parts = []
        for device in self.devices:
            pids = [lock_file.holder(self.path(device, slot)) for slot in range(self.slots)
                    if not self.free(device, slot)]
            if not pids:
                state = "free"
            elif len(pids) == self.slots and len(set(pids)) == 1 and self.slots > 1:
                state = f"a whole-GPU job (pid {pids[0]})"
            elif self.slots == 1:
                state = f"a job (pid {pids[0]})"
            else:
                state = f"{len(pids)} of {self.slots} slots held (pids {', '.join(sorted(set(pids)))})"
            if device in self.reserved:
                state += ", reserved by this job"
            elif self.reserved_by_another(device):
                state += f", reserved by a waiting whole-GPU job (pid {lock_file.holder(self.path(device, 'reserve'))})"
            parts.append(f"GPU {device}: {state}")
        return "; ".join(parts)


def lease(count: int, lock_dir: Path, devices: Sequence[str], timeout: float | None = None, slots_per_gpu: int = 1,
          share: bool = False) -> list[tuple[str, int]]:
    """Hold `count` whole GPUs of `devices` (or with `share` one slot of one), looking again with jittered backoff
    while they are busy; raise GpusBusy, saying what holds them, after `timeout` seconds (None: no limit)."""
    Path(lock_dir).mkdir(mode=0o700, parents=True, exist_ok=True)  # main checks whose it is: own_lock_dir
    board = Board(lock_dir, devices, slots_per_gpu)
    deadline = None if timeout is None else time.monotonic() + timeout
    wanted = (f"a free slot of a GPU ({slots_per_gpu} each)" if share else
              ("a whole GPU" if count == 1 else f"{count} whole GPUs")
              + (f" (all {slots_per_gpu} slots)" if slots_per_gpu > 1 else ""))
    said = None
    try:
        while True:
            held = board.take_slot() if share else board.take_whole(count)
            if held:
                return held
            if deadline is not None and time.monotonic() >= deadline:
                raise GpusBusy(f"gave up after {timeout:g} s waiting for {wanted}: {board.describe()}")
            if not share and slots_per_gpu > 1:  # a reservation keeps shared jobs away: there are none with one slot
                board.reserve(count)
            reserved = sorted(board.reserved)
            if said != reserved:
                drains = (f"; no new shared job starts on GPU {','.join(reserved)} until this job has it"
                          if reserved and slots_per_gpu > 1 else "")
                say(f"waiting for {wanted}: {board.describe()}{drains}")
                said = reserved
            pause = random.uniform(*BACKOFF_SECONDS)
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
    finally:
        board.release_reservations()


# --- the command line ---


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [--count K] [--timeout S] [--slots-per-gpu J [--share]] -- COMMAND ARGS...",
        description="Lease free GPUs (lock files in $AGD_GPU_LOCK_DIR, by default /tmp/agd-gpu-locks-<uid>), "
                    "set CUDA_VISIBLE_DEVICES and exec COMMAND.",
    )
    parser.add_argument("--count", type=int, default=1, help="GPUs to lease (default 1)")
    parser.add_argument("--timeout", type=float, help="give up (exit 75) after waiting this many seconds "
                                                      "(default: wait as long as it takes)")
    parser.add_argument("--slots-per-gpu", type=int, default=1,
                        help="jobs that may share one GPU (default 1); a whole-GPU lease takes all its slots")
    parser.add_argument("--share", action="store_true", help="lease one slot of a GPU (with --count 1)")
    return parser


def run(command: list[str], env: dict[str, str]) -> int:
    try:
        os.execvpe(command[0], command, env)
    except OSError as error:
        say(f"cannot run {command[0]}: {error}")
        return 127


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if "--" not in argv:
        parser.error("give the command after --, e.g. agd-gpu-lease -- agd-train ...")
    split = argv.index("--")
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if not command:
        parser.error("no command after --")
    problem = (number_problem("--count", args.count, AT_LEAST_ONE)
               or number_problem("--timeout", args.timeout, NOT_NEGATIVE, tensor=False)
               or number_problem("--slots-per-gpu", args.slots_per_gpu, SLOTS_PER_GPU))
    if problem:
        parser.error(problem)
    if args.share and args.count != 1:
        parser.error(f"--share leases one slot of one GPU; it cannot go with --count {args.count}")

    env = dict(os.environ)
    if "CUDA_VISIBLE_DEVICES" in env:
        say(f"CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']} already set; leasing nothing")
        return run(command, env)
    try:
        devices = available_devices(env)
        if not devices:
            parser.error(f"--count {args.count}: no GPU found on this machine ({nvidia_smi_gpus(env)[1]}); run on a "
                         "GPU node, set AGD_GPU_IDS to the GPUs to use, or train on the CPU "
                         "(python -m agd.jobs.launch --gpus 0)")
        if args.count > len(devices):
            parser.error(f"--count {args.count} but only {len(devices)} GPU(s) exist: {','.join(devices)}")
        variable = "AGD_GPU_LOCK_DIR" if env.get("AGD_GPU_LOCK_DIR") else None
        lock_dir = own_lock_dir(Path(env.get("AGD_GPU_LOCK_DIR") or default_lock_dir()), variable)
        held = lease(args.count, lock_dir, devices, args.timeout, args.slots_per_gpu, args.share)
    except (LeaseError, lock_file.UnsafeLockFile) as e:
        parser.error(str(e))
    except GpusBusy as busy:
        say(f"{busy} (locks in {lock_dir}). Other jobs hold these GPUs. If they are this workflow's, let this job "
            "wait: without --timeout it waits as long as they run. If other programs use some of the GPUs, set "
            "AGD_GPU_IDS to those this workflow may use; if more GPU jobs were started than the GPUs hold, give "
            f"snakemake --resources gpu=N with N the number of GPUs ({len(devices)} here).")
        return EX_TEMPFAIL

    # The exec'd command inherits the locked descriptors, so it holds the leases until it exits or is killed.
    for _, fd in held:
        os.set_inheritable(fd, True)
    env["CUDA_VISIBLE_DEVICES"] = env[LEASED] = ",".join(dict.fromkeys(device for device, _ in held))
    env[SLOTS] = f"{1 if args.share else args.slots_per_gpu}/{args.slots_per_gpu}"
    plural = "s" if "," in env["CUDA_VISIBLE_DEVICES"] else ""
    shared = f" (one of its {args.slots_per_gpu} job slots)" if args.share else ""
    say(f"using GPU{plural} {env['CUDA_VISIBLE_DEVICES']}{shared}")
    return run(command, env)


if __name__ == "__main__":
    sys.exit(main())
