"""Lease free GPUs through per-device lock files, then exec a command that holds the locks for its whole life."""

import argparse
import fcntl
import getpass
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from agd.plan.checks import AT_LEAST_ONE, NOT_NEGATIVE, SLOTS_PER_GPU, number_problem

PROG = "agd-gpu-lease"
EX_TEMPFAIL = 75
BACKOFF_SECONDS = (0.5, 2.0)
# What CUDA_VISIBLE_DEVICES accepts: an index, or a GPU or MIG instance UUID.
DEVICE_ID = re.compile(r"\d+|(GPU|MIG)-[0-9A-Za-z-]+(/\d+)*")
# Set for the leased command: a job that finds it set but no CUDA device refuses rather than train on the CPU.
LEASED = "AGD_LEASED_GPUS"


class GpusBusy(TimeoutError):
    def __init__(self, busy: list[str]):
        super().__init__(f"busy: {','.join(busy)}")
        self.busy = busy


def say(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class LeaseError(ValueError):
    """The environment names GPUs or a lock directory that cannot be used: exit 2 with the message."""


def available_devices(env: Mapping[str, str] = os.environ) -> list[str]:
    """Candidate GPU ids in order of preference: AGD_GPU_IDS if set and non-empty, else what nvidia-smi lists.
    Raises LeaseError for an id that is neither an index nor a GPU/MIG UUID."""
    listed = env.get("AGD_GPU_IDS", "")
    if listed.strip():
        devices = list(dict.fromkeys(d.strip() for d in listed.split(",") if d.strip()))
        bad = [d for d in devices if not DEVICE_ID.fullmatch(d)]
        if bad:
            raise LeaseError(f"AGD_GPU_IDS={listed!r}: {', '.join(map(repr, bad))} is not a GPU index (0, 1, ...) or "
                             "a GPU-/MIG- UUID as nvidia-smi -L prints them; set AGD_GPU_IDS=0,1 or unset it")
        return devices
    nvidia_smi = shutil.which("nvidia-smi", path=env.get("PATH"))
    if nvidia_smi is None:
        return []
    try:
        result = subprocess.run(
            [nvidia_smi, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, check=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()]


def default_lock_dir() -> Path:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, as in some containers
        user = str(os.getuid())
    return Path(f"/tmp/agd-gpu-locks-{user}")


def slot_file(lock_dir: Path, device: str, slot: int) -> Path:
    """A device's lock file for one of its job slots (slot 0's is the device's own: gpu<id>.lock)."""
    name = device.replace("/", "_")  # a MIG instance's UUID may hold slashes
    return lock_dir / (f"gpu{name}.lock" if slot == 0 else f"gpu{name}.{slot}.lock")


def try_lock(path: Path) -> int | None:
    """The descriptor of `path` locked now (this process's pid written in it), or None if another holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def try_device(lock_dir: Path, device: str, slots: range) -> list[int] | None:
    """Every slot in `slots` of one device, or none of them."""
    fds = []
    for slot in slots:
        fd = try_lock(slot_file(lock_dir, device, slot))
        if fd is None:
            for held in fds:
                os.close(held)
            return None
        fds.append(fd)
    return fds


def try_lease(count: int, lock_dir: Path, devices: Sequence[str], slots_per_gpu: int = 1,
              share: bool = False) -> tuple[list[tuple[str, int]], list[str]]:
    """One non-blocking pass over the devices: (the leases, []) or ([], the devices found busy). A lease is
    `count` whole devices (all their slots), or with `share` one slot of the device with the most free slots."""
    if share:
        free = {device: sum(1 for slot in range(slots_per_gpu) if not slot_held(lock_dir, device, slot))
                for device in devices}
        for device in sorted(devices, key=lambda d: -free[d]):
            for slot in range(slots_per_gpu):
                fd = try_lock(slot_file(lock_dir, device, slot))
                if fd is not None:
                    return [(device, fd)], []
        return [], list(devices)
    held: list[tuple[str, int]] = []
    busy: list[str] = []
    for device in devices:
        fds = try_device(lock_dir, device, range(slots_per_gpu))
        if fds is None:
            busy.append(device)
            continue
        held += [(device, fd) for fd in fds]
        if len(held) == count * slots_per_gpu:
            return held, []
    for _, fd in held:
        os.close(fd)
    return [], busy


def slot_held(lock_dir: Path, device: str, slot: int) -> bool:
    fd = try_lock(slot_file(lock_dir, device, slot))
    if fd is None:
        return True
    os.close(fd)
    return False


def lease(count: int, lock_dir: Path, devices: Sequence[str], timeout: float, slots_per_gpu: int = 1,
          share: bool = False) -> list[tuple[str, int]]:
    """Hold `count` of `devices` (or with `share` one slot of one), retrying with jittered backoff; raise
    GpusBusy after `timeout` seconds."""
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    waiting_said = False
    while True:
        held, busy = try_lease(count, lock_dir, devices, slots_per_gpu, share)
        if held:
            return held
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GpusBusy(busy)
        if not waiting_said:
            say(f"waiting for {count} free GPU(s); busy: {','.join(busy)}")
            waiting_said = True
        time.sleep(min(random.uniform(*BACKOFF_SECONDS), remaining))


def usable_lock_dir(lock_dir: Path) -> Path:
    """The lock directory, made if missing; LeaseError if it cannot hold lock files."""
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkstemp(dir=lock_dir, prefix=".probe.")
    except OSError as e:
        raise LeaseError(f"AGD_GPU_LOCK_DIR={lock_dir}: cannot hold lock files there ({e.strerror}); point "
                         "AGD_GPU_LOCK_DIR at a writable directory on this node, or unset it") from e
    os.close(probe[0])
    os.unlink(probe[1])
    return lock_dir


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"{PROG} [--count K] [--timeout S] [--slots-per-gpu J [--share]] -- COMMAND ARGS...",
        description="Lease free GPUs (one lock file each in $AGD_GPU_LOCK_DIR), "
                    "set CUDA_VISIBLE_DEVICES and exec COMMAND.",
    )
    parser.add_argument("--count", type=int, default=1, help="GPUs to lease (default 1)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for free GPUs (default 3600)")
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
            say("no GPUs found; running the command without CUDA_VISIBLE_DEVICES")
            return run(command, env)
        if args.count > len(devices):
            parser.error(f"--count {args.count} but only {len(devices)} GPU(s) exist: {','.join(devices)}")
        lock_dir = usable_lock_dir(Path(env.get("AGD_GPU_LOCK_DIR") or default_lock_dir()))
    except LeaseError as e:
        parser.error(str(e))

    try:
        held = lease(args.count, lock_dir, devices, args.timeout, args.slots_per_gpu, args.share)
    except GpusBusy as busy:
        say(
            f"no {args.count} free GPU(s) after {args.timeout:g} s; busy: {','.join(busy.busy)} "
            f"(locks in {lock_dir}). More GPU jobs run than there are GPUs: run snakemake with "
            f"--resources gpu=N where N is the number of GPUs ({len(devices)} here), "
            f"or set AGD_GPU_IDS to the GPUs this node's jobs may use."
        )
        return EX_TEMPFAIL

    # The exec'd command inherits the locked descriptors, so it holds the leases until it exits or is killed.
    for _, fd in held:
        os.set_inheritable(fd, True)
    env["CUDA_VISIBLE_DEVICES"] = env[LEASED] = ",".join(dict.fromkeys(device for device, _ in held))
    plural = "s" if "," in env["CUDA_VISIBLE_DEVICES"] else ""
    shared = f" (one of its {args.slots_per_gpu} job slots)" if args.share else ""
    say(f"using GPU{plural} {env['CUDA_VISIBLE_DEVICES']}{shared}")
    return run(command, env)


if __name__ == "__main__":
    sys.exit(main())
