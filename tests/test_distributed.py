"""Data-parallel AGD: two torchrun processes (gloo, CPU) take the same steps as one process on the whole batch."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

RUN = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "4", "--width", "64", "--train-bs", "100",
       "--epochs", "2", "--log-steps", "3", "--device", "cpu", "--threads", "1", "--keep-checkpoint"]


def train(out: Path, *extra: str, processes: int = 1) -> None:
    if processes == 1:
        command = [sys.executable, "-m", "agd.jobs.train"]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   "-m", "agd.jobs.train", "--distribute"]
    done = subprocess.run([*command, *RUN, *extra, "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, atol", [
    (["--optimizer", "agd"], 1e-6),
    # Adam divides by sqrt(v): summation-order noise in a tiny gradient entry is amplified.
    (["--optimizer", "adam", "--lr", "1e-3"], 1e-5),
])
def test_two_processes_take_the_steps_of_one(tmp_path, optimizer, atol):
    # 4000 images at batch 100: every global batch splits 50/50.
    train(tmp_path / "one", *optimizer)
    train(tmp_path / "two", *optimizer, processes=2)

    weights = [torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"] for name in ("one", "two")]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=atol)

    one, two = (pd.read_csv(tmp_path / name / "metrics.csv").drop(columns="time_s") for name in ("one", "two"))
    assert list(one["step"]) == list(two["step"])
    numeric = one.select_dtypes("number").columns
    pd.testing.assert_frame_equal(one[numeric], two[numeric], rtol=1e-4, atol=atol)


@pytest.mark.slow
def test_uneven_last_batch_is_weighted(tmp_path):
    """At batch 96 the last global batch has 64 images; a 3-way split gives shares of 22, 21 and 21."""
    extra = ["--optimizer", "agd", "--train-bs", "96", "--epochs", "1"]
    train(tmp_path / "one", *extra)
    train(tmp_path / "three", *extra, processes=3)
    weights = [torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"] for name in ("one", "three")]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)


def test_distribute_without_torchrun_is_refused(tmp_path):
    done = subprocess.run([sys.executable, "-m", "agd.jobs.train", *RUN, "--distribute", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "torchrun" in done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_launch_leases_gpus_and_starts_one_process_per_gpu(tmp_path):
    """The workflow's launcher: --gpus 2 leases two (fake) GPUs and trains data-parallel under torchrun."""
    import os

    env = {**os.environ, "AGD_GPU_IDS": "0,1,2", "AGD_GPU_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    train(tmp_path / "one", "--optimizer", "agd")
    launched = subprocess.run(
        [sys.executable, "-m", "agd.jobs.launch", "--gpus", "2", "--", *RUN, "--optimizer", "agd",
         "--out", str(tmp_path / "two")], capture_output=True, text=True, env=env,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "using GPUs 0,1" in launched.stderr
    weights = [torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"] for name in ("one", "two")]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)


def test_launch_on_the_cpu_runs_the_job_as_it_is(tmp_path):
    launched = subprocess.run([sys.executable, "-m", "agd.jobs.launch", "--gpus", "0", "--", *RUN, "--optimizer", "agd",
                               "--epochs", "0", "--out", str(tmp_path / "cpu")], capture_output=True, text=True)
    assert launched.returncode == 0, launched.stderr[-2000:]
    assert (tmp_path / "cpu" / "run.json").exists()
