"""Data-parallel AGD: two torchrun processes (gloo, CPU) take the same steps as one process on the whole batch."""

import os
import runpy
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


# One process or each torchrun rank: float64 (which AGD's float32 norms do not take, so SGD), steps of a ResNet-18
# on a global batch split over the ranks as the image job splits it; rank 0 saves the weights and batch-norm
# statistics.
BATCHNORM_STEPS = """
import os, sys
import torch
torch.set_default_dtype(torch.float64)
from agd.jobs import distributed
from agd.losses import build_loss
from agd.models.build import build_model
from agd.optim import registry
from agd.plan.specs import ImageRun

out, sync = sys.argv[1], sys.argv[2] == "sync"
device = torch.device("cpu")
ranks = distributed.start(device)[0] if distributed.launched_by_torchrun() else distributed.Ranks()
torch.manual_seed(0)
spec = ImageRun(arch="resnet18", dataset="cifar10", width=4, optimizer="sgd", lr=0.1)
model = build_model("resnet18", input_shape=(3, 32, 32), num_classes=10, width=4)
opt = registry.get("sgd").build(registry.IMAGE, model, spec)
net = distributed.data_parallel(model, device, ranks, sync_batchnorm=sync)
loss_fn = build_loss("mse", 10)
data = torch.Generator().manual_seed(1)
for step in range(2):
    x, y = torch.randn(24, 3, 32, 32, generator=data), torch.randint(0, 10, (24,), generator=data)
    x, y = x[ranks.rank::ranks.world], y[ranks.rank::ranks.world]
    opt.zero_grad(set_to_none=True)
    (loss_fn(net(x), y) * (len(y) * ranks.world / 24)).backward()
    opt.step()
if ranks.is_main:
    torch.save(model.state_dict(), out)
distributed.stop()
"""


def batchnorm_steps(tmp_path: Path, name: str, processes: int, sync: bool = True) -> dict:
    script = tmp_path / "steps.py"
    script.write_text(BATCHNORM_STEPS)
    argv = [str(script), str(tmp_path / name), "sync" if sync else "local"]
    if processes == 1:  # the script run in this process, which has imported torch already
        dtype, saved_argv = torch.get_default_dtype(), sys.argv
        try:
            sys.argv = argv
            runpy.run_path(str(script), run_name="__main__")
        finally:
            sys.argv = saved_argv
            torch.set_default_dtype(dtype)
    else:
        done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                               f"--nproc-per-node={processes}", *argv],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(tmp_path / name, weights_only=True)


@pytest.mark.slow
def test_two_ranks_with_sync_batchnorm_take_the_steps_of_one_process(tmp_path):
    """ResNet-18 in float64: with SyncBatchNorm two ranks equal one process on the whole batch, weights and running
    statistics (with per-rank batch norm they differ by about 1e-2)."""
    one = batchnorm_steps(tmp_path, "one", 1)
    two = batchnorm_steps(tmp_path, "two", 2)
    assert one.keys() == two.keys() and any("running_var" in key for key in one)
    worst = max((two[key].double() - value.double()).abs().max().item() for key, value in one.items())
    assert worst <= 1e-6, worst


def test_sync_batchnorm_is_the_default_and_a_flag_turns_it_off():
    from agd.jobs.arguments import parse_args

    base = ["--arch", "resnet18", "--dataset", "mnist5k", "--out", "unused"]
    assert parse_args(base)[1].sync_batchnorm is True
    assert parse_args([*base, "--no-sync-batchnorm"])[1].sync_batchnorm is False
