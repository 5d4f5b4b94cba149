"""Lock files another local user cannot hijack: the GPU lease's lock directory must be the user's own, and no
lock file (the lease's, a run directory's .lock) is opened through a link. The attacker is a second uid
(setpriv, as root: CI runs as root); the checks that need no second user run as this one."""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import agd.jobs.gpu_lease
from agd.jobs import lock_file, run_dir

LEASE = [sys.executable, "-P", agd.jobs.gpu_lease.__file__]
SETPRIV = shutil.which("setpriv")


def as_user(uid: int, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command],
                          capture_output=True, text=True, timeout=60, **kwargs)


@pytest.fixture
def users():
    """(victim, attacker): two uids with no passwd entry, fresh for each test; skips unless root with setpriv."""
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to act as two other users")
    victim, attacker = (30000 + int(uuid.uuid4().int % 20000) for _ in range(2))
    if victim == attacker:
        attacker += 1
    if as_user(victim, [sys.executable, "-c", "import agd.plan.checks"]).returncode != 0:
        pytest.skip("another uid cannot run this checkout's Python here")
    yield victim, attacker


@pytest.fixture
def victim_files(users):
    """A directory of the victim's with a file it cares about, outside any lock directory."""
    victim, _ = users
    home = Path(f"/tmp/agd-victim-{uuid.uuid4().hex[:8]}")
    home.mkdir(mode=0o755)
    precious = home / "precious.txt"
    precious.write_text("the victim's data\n")
    os.chown(home, victim, victim)
    os.chown(precious, victim, victim)
    yield home, precious
    shutil.rmtree(home, ignore_errors=True)


def victim_default_lock_dir(victim: int, env: dict) -> Path:
    """Where the lease, run as the victim, puts its locks when AGD_GPU_LOCK_DIR is unset."""
    found = as_user(victim, [sys.executable, "-c", "from agd.jobs.gpu_lease import default_lock_dir as d; print(d())"],
                    env=env)
    assert found.returncode == 0, found.stderr
    return Path(found.stdout.strip())


def lease_env(victim: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "AGD_GPU_LOCK_DIR")}
    return {**env, "AGD_GPU_IDS": "0", "USER": f"victim{victim}", "LOGNAME": f"victim{victim}", "HOME": "/tmp"}


@pytest.mark.parametrize("plant", ["a link to the victim's file", "a lock the attacker holds"])
def test_a_lock_directory_planted_by_another_user_is_refused(users, victim_files, plant):
    victim, attacker = users
    home, precious = victim_files
    env = lease_env(victim)
    lock_dir = victim_default_lock_dir(victim, env)
    holder = None
    try:
        planted = as_user(attacker, ["sh", "-c", f"mkdir -m 777 {lock_dir} && ln -s {precious} {lock_dir}/gpu0.lock"
                                     if plant.startswith("a link") else f"mkdir -m 777 {lock_dir}"])
        assert planted.returncode == 0, planted.stderr
        if plant.startswith("a lock"):
            holder = subprocess.Popen([SETPRIV, f"--reuid={attacker}", f"--regid={attacker}", "--clear-groups",
                                       "flock", str(lock_dir / "gpu0.lock"), "sleep", "60"])
            while not (lock_dir / "gpu0.lock").exists():
                time.sleep(0.02)
        marker = home / "ran"
        result = as_user(victim, [*LEASE, "--timeout", "2", "--", "touch", str(marker)], env=env)
        assert result.returncode == 2, result.stderr
        assert f"{lock_dir} belongs to uid {attacker}, not to you" in result.stderr
        assert "AGD_GPU_LOCK_DIR" in result.stderr
        assert precious.read_text() == "the victim's data\n" and not marker.exists()
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        shutil.rmtree(lock_dir, ignore_errors=True)


def test_another_user_cannot_delete_a_held_lock_so_no_two_jobs_share_a_gpu(users, victim_files):
    victim, attacker = users
    home, _ = victim_files
    env = lease_env(victim)
    lock_dir = victim_default_lock_dir(victim, env)
    stop = home / "stop"
    first = subprocess.Popen([SETPRIV, f"--reuid={victim}", f"--regid={victim}", "--clear-groups", *LEASE, "--",
                              "sh", "-c", f"echo $CUDA_VISIBLE_DEVICES; while [ ! -e {stop} ]; do sleep 0.05; done"],
                             env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "0"
        deleted = as_user(attacker, ["rm", "-f", str(lock_dir / "gpu0.lock")])
        assert deleted.returncode != 0 and (lock_dir / "gpu0.lock").exists()
        second = as_user(victim, [*LEASE, "--timeout", "1", "--", "true"], env=env)
        assert second.returncode == 75, second.stderr
    finally:
        stop.touch()
        first.wait(timeout=30)
        first.stdout.close()
        shutil.rmtree(lock_dir, ignore_errors=True)


def test_a_run_directorys_lock_planted_as_a_link_by_another_user_is_refused(users, tmp_path):
    """A results directory colleagues may write in: the attacker links .lock to a file of this user's."""
    _, attacker = users
    out = Path(f"/tmp/agd-shared-run-{uuid.uuid4().hex[:8]}")
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    precious = tmp_path / "precious.txt"
    precious.write_text("this user's data\n")
    try:
        planted = as_user(attacker, ["ln", "-s", str(precious), str(out / ".lock")])
        assert planted.returncode == 0, planted.stderr
        with pytest.raises(run_dir.RunDirProblem, match=r"\.lock is a symbolic link"):
            run_dir.RunLock(out)
        assert precious.read_text() == "this user's data\n"
    finally:
        shutil.rmtree(out, ignore_errors=True)


# --- what needs no second user ---


def test_a_lock_file_is_never_opened_through_a_link_or_a_second_name(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("data\n")
    (tmp_path / "link.lock").symlink_to(precious)
    (tmp_path / "dangling.lock").symlink_to(tmp_path / "nowhere")
    os.link(precious, tmp_path / "second-name.lock")
    for name, said in (("link.lock", "is a symbolic link"), ("dangling.lock", "is a symbolic link"),
                       ("second-name.lock", "is a file with 2 names")):
        with pytest.raises(lock_file.UnsafeLockFile, match=said):
            lock_file.acquire(tmp_path / name)
    assert precious.read_text() == "data\n" and not (tmp_path / "nowhere").exists()


def test_a_lock_whose_file_was_replaced_while_locking_is_taken_on_the_new_file(tmp_path, monkeypatch):
    """Between the open and the flock a releasing holder unlinks the file and another job makes a new one: the
    lock on the old inode would be no lock at all, so it is taken again on what the path names now."""
    path = tmp_path / "x.lock"
    real_flock = lock_file.fcntl.flock
    replaced = []

    def flock_after_a_replacement(fd, operation):
        if not replaced:
            path.unlink()
            path.write_text("")
            replaced.append(os.stat(path).st_ino)
        return real_flock(fd, operation)

    monkeypatch.setattr(lock_file.fcntl, "flock", flock_after_a_replacement)
    fd = lock_file.acquire(path)
    try:
        assert os.fstat(fd).st_ino == replaced[0] == os.stat(path).st_ino
    finally:
        os.close(fd)


def test_a_lock_directory_others_can_write_is_refused(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    lock_dir.chmod(0o777)
    env = {**os.environ, "AGD_GPU_IDS": "0", "AGD_GPU_LOCK_DIR": str(lock_dir)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    result = subprocess.run([*LEASE, "--", "true"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"AGD_GPU_LOCK_DIR={lock_dir} can be written by others (mode 777)" in result.stderr
    assert not any(lock_dir.iterdir())


def test_a_link_planted_in_the_lock_directory_is_refused_not_followed(tmp_path):
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    precious = tmp_path / "precious.txt"
    precious.write_text("data\n")
    (lock_dir / "gpu0.lock").symlink_to(precious)
    env = {**os.environ, "AGD_GPU_IDS": "0", "AGD_GPU_LOCK_DIR": str(lock_dir)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    result = subprocess.run([*LEASE, "--", "true"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "gpu0.lock is a symbolic link" in result.stderr
    assert precious.read_text() == "data\n"
