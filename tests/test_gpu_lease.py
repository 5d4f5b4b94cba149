"""GPU leasing with real processes over fake device ids: distinct devices, waiting, SIGKILL release, pass-through."""

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

import agd.jobs.gpu_lease
from agd.jobs.gpu_lease import EX_TEMPFAIL, available_devices, lease, main

# Run the module file itself, not `-m agd.gpu_lease`: importing the agd package imports torch,
# seconds per process. -P keeps src/agd (which holds io.py) off sys.path.
LEASE = [sys.executable, "-P", agd.jobs.gpu_lease.__file__]
DEVICES = ["0", "1", "2"]

# Prints its CUDA_VISIBLE_DEVICES, then holds on until the file named by argv[1] exists.
HOLD = """
import os, sys, time
print(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
"""
PRINT = 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))'


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(AGD_GPU_IDS=",".join(DEVICES), AGD_GPU_LOCK_DIR=str(tmp_path / "locks"))
    return env


@pytest.fixture
def holders(tmp_path: Path, env: dict[str, str]):
    """Start lease jobs that hold their GPUs until the test ends; each returns (process, printed devices)."""
    stop = tmp_path / "stop"
    started: list[subprocess.Popen] = []

    def start(*lease_args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(
            [*LEASE, *lease_args, "--", sys.executable, "-c", HOLD, str(stop)],
            env={**env, **(extra_env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        started.append(proc)
        return proc

    yield start
    stop.touch()
    for proc in started:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def read_line(proc: subprocess.Popen, timeout: float, stream: str = "stdout") -> str | None:
    pipe = getattr(proc, stream)
    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline().strip() if ready else None


def run_lease(env: dict[str, str], *args: str, module: bool = False) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "agd.jobs.gpu_lease"] if module else LEASE
    return subprocess.run([*launcher, *args], env=env, capture_output=True, text=True, timeout=30)


def test_concurrent_jobs_get_distinct_devices_and_a_killed_jobs_device_goes_to_the_waiting_one(holders, env):
    jobs = [holders() for _ in DEVICES]
    devices = [read_line(job, timeout=10) for job in jobs]
    assert sorted(devices) == DEVICES
    for job, device in zip(jobs, devices):  # the exec'd command itself holds the lock: no wrapper process
        assert (Path(env["AGD_GPU_LOCK_DIR"]) / f"gpu{device}.lock").read_text().strip() == str(job.pid)

    waiting = holders()
    assert read_line(waiting, timeout=1.0) is None
    assert waiting.poll() is None

    jobs[1].kill()
    jobs[1].wait()
    assert read_line(waiting, timeout=10) == devices[1]


def test_count_two_gets_two_distinct_devices(env):
    result = run_lease(env, "--count", "2", "--", sys.executable, "-c", PRINT)
    assert result.returncode == 0, result.stderr
    leased = result.stdout.strip().split(",")
    assert len(leased) == 2 and len(set(leased)) == 2 and set(leased) <= set(DEVICES)
    assert f"using GPUs {result.stdout.strip()}" in result.stderr


def test_preset_cuda_visible_devices_passes_through_without_locking(holders, env):
    job = holders(extra_env={"CUDA_VISIBLE_DEVICES": "5"})
    assert read_line(job, timeout=10) == "5"
    held = lease(len(DEVICES), Path(env["AGD_GPU_LOCK_DIR"]), DEVICES, timeout=0)
    try:
        assert sorted(device for device, _ in held) == DEVICES
    finally:
        for _, fd in held:
            os.close(fd)


def test_no_gpus_refuses_instead_of_running_on_the_cpu(tmp_path, env):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    marker = tmp_path / "ran"
    result = run_lease({**env, "AGD_GPU_IDS": "", "PATH": str(empty_bin)}, "--count", "2", "--",
                       sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.returncode == 2
    assert "no GPU found on this machine (AGD_GPU_IDS is unset and nvidia-smi is not on PATH)" in result.stderr
    assert "--gpus 0" in result.stderr and not marker.exists()


def test_launch_of_two_gpus_on_a_machine_without_one_refuses_instead_of_training_on_the_cpu(tmp_path, env):
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "agd.jobs.launch", "--gpus", "2", "--", "--arch", "fcn", "--dataset", "mnist5k",
         "--epochs", "0", "--device", "cpu", "--out", str(tmp_path / "run")],
        env={**env, "AGD_GPU_IDS": "", "PATH": str(empty_bin)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no GPU found on this machine" in result.stderr
    assert not (tmp_path / "run").exists()


def test_a_timeout_exits_75_and_names_what_holds_each_gpu(env):
    held = lease(len(DEVICES), Path(env["AGD_GPU_LOCK_DIR"]), DEVICES, timeout=0)
    try:
        result = run_lease(env, "--timeout", "1", "--", sys.executable, "-c", PRINT)
    finally:
        for _, fd in held:
            os.close(fd)
    assert result.returncode == EX_TEMPFAIL
    assert result.stdout == ""
    assert f"gave up after 1 s waiting for a whole GPU: GPU 0: a job (pid {os.getpid()}); GPU 1: a job" in result.stderr
    assert "without --timeout it waits" in result.stderr and "--resources gpu=N" in result.stderr


def test_exit_code_is_the_commands(env):
    result = run_lease(env, "--", sys.executable, "-c", "raise SystemExit(3)", module=True)
    assert result.returncode == 3, result.stderr
    assert "using GPU " in result.stderr


@pytest.mark.parametrize("argv, message", [
    (["python"], "after --"),
    (["--"], "no command"),
    (["--count", "0", "--", "python"], "at least 1"),
    (["--count", "4", "--", "python"], "only 3 GPU(s)"),
])
def test_bad_usage_exits_2(argv, message, monkeypatch, capsys):
    monkeypatch.setenv("AGD_GPU_IDS", ",".join(DEVICES))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_available_devices_from_env_or_nvidia_smi(tmp_path):
    assert available_devices({"AGD_GPU_IDS": " 2, 0,2 ,"}) == ["2", "0"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert available_devices({"PATH": str(bin_dir)}) == []

    nvidia_smi = bin_dir / "nvidia-smi"
    nvidia_smi.write_text("#!/bin/sh\nprintf '0, GPU-aa\\n1, GPU-bb\\n'\n")
    nvidia_smi.chmod(0o755)
    assert available_devices({"AGD_GPU_IDS": "", "PATH": str(bin_dir)}) == ["0", "1"]

    nvidia_smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert available_devices({"PATH": str(bin_dir)}) == []


def test_shared_jobs_pack_onto_one_gpu_so_that_a_whole_gpu_job_starts_at_once(holders, env):
    """Two GPUs of two slots: two shared jobs fill GPU 0 (best fit), not one slot of each, and a whole-GPU job
    gets GPU 1 without waiting."""
    two = {"AGD_GPU_IDS": "0,1"}
    devices = []
    for _ in range(2):  # one after another, each leasing before the next starts
        devices.append(read_line(holders("--slots-per-gpu", "2", "--share", extra_env=two), timeout=10))
    assert devices == ["0", "0"]
    whole = holders("--slots-per-gpu", "2", extra_env=two)
    assert read_line(whole, timeout=10) == "1"


def test_a_waiting_whole_gpu_job_reserves_a_gpu_that_shared_jobs_then_leave_to_drain(holders, env):
    """GPU 0 full of shared jobs, GPU 1 running one: a whole-GPU job waits and reserves GPU 1, so a new shared job
    does not take GPU 1's free slot but waits for GPU 0; when GPU 1's job ends the whole-GPU job has it."""
    two = {"AGD_GPU_IDS": "0,1"}
    shared = []
    for expected in ("0", "0", "1"):
        shared.append(holders("--slots-per-gpu", "2", "--share", extra_env=two))
        assert read_line(shared[-1], timeout=10) == expected

    whole = holders("--slots-per-gpu", "2", extra_env=two)
    said = read_line(whole, timeout=10, stream="stderr")
    assert said.startswith("agd-gpu-lease: waiting for a whole GPU (all 2 slots): GPU 0: 2 of 2 slots held")
    assert "GPU 1: 1 of 2 slots held" in said and "reserved by this job" in said
    assert "no new shared job starts on GPU 1 until this job has it" in said

    late = holders("--slots-per-gpu", "2", "--share", extra_env=two)
    assert read_line(late, timeout=1.5) is None  # GPU 1 has a free slot, but it is reserved
    shared[2].kill()
    shared[2].wait()
    assert read_line(whole, timeout=10) == "1"
    shared[0].kill()
    shared[0].wait()
    assert read_line(late, timeout=10) == "0"


def test_a_whole_gpu_holds_every_slot(env):
    lock_dir = Path(env["AGD_GPU_LOCK_DIR"])
    held = lease(1, lock_dir, ["0"], timeout=0, slots_per_gpu=3)
    try:
        assert len(held) == 3 and {device for device, _ in held} == {"0"}
        with pytest.raises(TimeoutError):
            lease(1, lock_dir, ["0"], timeout=0, slots_per_gpu=3, share=True)
    finally:
        for _, fd in held:
            os.close(fd)
    shared = lease(1, lock_dir, ["0"], timeout=0, slots_per_gpu=3, share=True)
    for _, fd in shared:
        os.close(fd)


def test_share_goes_with_one_gpu(monkeypatch, capsys):
    monkeypatch.setenv("AGD_GPU_IDS", ",".join(DEVICES))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--count", "2", "--share", "--slots-per-gpu", "2", "--", "python"])
    assert exit_info.value.code == 2 and "--share" in capsys.readouterr().err


@pytest.mark.parametrize("ids, message", [
    ("\uff10", "is not a GPU index"),          # a full-width zero
    ("0,\u0661", "is not a GPU index"),        # an Arabic-Indic one
    ("0,00", "'0' and '00' name the same GPU"),
    ("1,GPU-BB", "'1' and 'GPU-BB' name the same GPU"),  # nvidia-smi says GPU 1 is GPU-bb
])
def test_gpu_ids_are_ascii_indices_or_uuids_each_naming_another_gpu(tmp_path, env, ids, message):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\nprintf '0, GPU-aa\\n1, GPU-bb\\n'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    marker = tmp_path / "ran"
    result = run_lease({**env, "AGD_GPU_IDS": ids, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, "--",
                       sys.executable, "-c", f"open({str(marker)!r}, 'w')")
    assert result.returncode == 2 and message in result.stderr and "AGD_GPU_IDS" in result.stderr
    assert not marker.exists()

