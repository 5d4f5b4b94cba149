"""The training job end to end on the bundled MNIST subset: metrics, records, resume, divergence, bad input."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from agd.jobs.metrics import COLUMNS
from agd.jobs.train import main

SMALL_FCN = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "3", "--width", "32", "--device", "cpu"]


def train(tmp_path: Path, *extra: str, name: str = "run") -> tuple[int, Path]:
    out = tmp_path / name
    code = main([*SMALL_FCN, "--out", str(out), *extra])
    return code, out


def read_metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv")


@pytest.mark.parametrize("optimizer, extra", [
    ("agd", []), ("agd-bias", ["--bias"]), ("adam", ["--lr", "1e-3"]), ("sgd", ["--lr", "0.1"]),
])
def test_two_epochs_lower_the_loss(tmp_path, optimizer, extra):
    code, out = train(tmp_path, "--optimizer", optimizer, "--epochs", "2", *extra)
    assert code == 0
    m = read_metrics(out)
    assert list(m.columns) == COLUMNS
    assert m["epoch"].tolist() == [0, 1, 2] and (m["kind"] == "epoch").all()
    assert m["step"].tolist() == [0, 32, 64]  # 4000 images at batch 128: 32 steps, the last one smaller
    assert m["train_loss"].iloc[-1] < m["train_loss"].iloc[0]
    assert m["test_loss"].iloc[-1] < m["test_loss"].iloc[0]
    for col in ("train_acc", "test_acc"):
        assert m[col].between(0, 1).all()
    assert (m.loc[0, ["update_mean", "update_min", "update_max"]] == 0).all()
    assert (m.loc[1:, "update_min"] > 0).all()
    assert (m["update_min"] <= m["update_mean"]).all() and (m["update_mean"] <= m["update_max"]).all()
    if optimizer.startswith("agd"):
        assert m["lr"].isna().all()
        assert (m["eta_min"] > 0).all()
        assert (m["eta_min"] <= m["eta_mean"]).all() and (m["eta_mean"] <= m["eta_max"]).all()
    else:
        assert m[["eta_mean", "eta_min", "eta_max"]].isna().all().all()
        assert (m["lr"] == float(extra[1])).all()

    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed"
    assert record["args"]["optimizer"] == optimizer
    assert record["torch"] == torch.__version__ and "git_commit" in record and "cuda" in record
    assert record["final"]["test_acc"] == pytest.approx(m["test_acc"].iloc[-1])
    assert record["epochs_completed"] == 2 and record["steps"] == 64
    assert not (out / "checkpoint.pt").exists()


def test_epoch_zero_is_measured_at_init(tmp_path):
    """Epoch 0 is a pass over the training batches without updates: the weights after it are the init."""
    code, out = train(tmp_path, "--epochs", "0", "--keep-checkpoint")
    assert code == 0
    m = read_metrics(out)
    assert len(m) == 1 and m.loc[0, "epoch"] == 0 and m.loc[0, "step"] == 0
    assert 0.05 < m.loc[0, "train_acc"] < 0.2  # chance
    assert m.loc[0, "train_loss"] == pytest.approx(1.0, abs=0.3)  # ||y||^2 / C = 1 when f ~ 0
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    # Same seed, same init: an untouched AGD-initialised model has the weights of the checkpoint.
    from agd.models import build_model
    from agd.optim import registry
    from agd.plan.specs import ImageRun
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 28, 28), num_classes=10, depth=3, width=32)
    registry.get("agd").build(registry.IMAGE, model, ImageRun())
    for name, value in model.state_dict().items():
        assert torch.equal(value, state["model"][name]), name


def test_log_steps_adds_a_row_per_iteration(tmp_path):
    code, out = train(tmp_path, "--epochs", "2", "--log-steps", "5")
    assert code == 0
    m = read_metrics(out)
    steps = m[m["kind"] == "step"]
    assert steps["step"].tolist() == [1, 2, 3, 4, 5]
    assert (steps["epoch"] == 1).all()
    assert (steps["eta_min"] == steps["eta_max"]).all() and steps["eta_mean"].notna().all()
    assert m[m["kind"] == "epoch"]["epoch"].tolist() == [0, 1, 2]
    # Evaluated on the whole test set after each step: accuracy moves off chance within 5 steps.
    assert steps["test_acc"].iloc[-1] > steps["test_acc"].iloc[0] or steps["test_loss"].iloc[-1] < steps["test_loss"].iloc[0]


def test_divergence_is_a_result(tmp_path, capsys):
    code, out = train(tmp_path, "--optimizer", "sgd", "--lr", "1e6", "--epochs", "5")
    assert code == 0
    m = read_metrics(out)
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "diverged"
    assert len(m) < 6 and not pd.isna(m["train_loss"].iloc[0])
    last = m["train_loss"].iloc[-1]
    assert pd.isna(last) or last == float("inf")
    assert "diverged" in capsys.readouterr().out


def test_finished_run_is_not_repeated(tmp_path, capsys):
    assert train(tmp_path, "--epochs", "1")[0] == 0
    before = (tmp_path / "run" / "metrics.csv").read_text()
    assert train(tmp_path, "--epochs", "1")[0] == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (tmp_path / "run" / "metrics.csv").read_text() == before


def test_a_shorter_request_keeps_a_longer_finished_run(tmp_path, capsys):
    """Figures that share a run ask for different lengths; the longest one trained must survive the others."""
    assert train(tmp_path, "--epochs", "2")[0] == 0
    before = {name: (tmp_path / "run" / name).read_text() for name in ("metrics.csv", "run.json")}
    assert train(tmp_path, "--epochs", "0")[0] == 0
    assert "nothing to do" in capsys.readouterr().out
    assert {name: (tmp_path / "run" / name).read_text() for name in before} == before


def test_other_arguments_in_the_same_out_are_refused(tmp_path, capsys):
    assert train(tmp_path, "--epochs", "1")[0] == 0
    code, _ = train(tmp_path, "--epochs", "1", "--seed", "1")
    assert code == 2
    assert "different run" in capsys.readouterr().err


def test_kept_checkpoint_extends_a_run_to_the_same_numbers(tmp_path):
    assert train(tmp_path, "--epochs", "3", name="straight")[0] == 0
    assert train(tmp_path, "--epochs", "1", "--keep-checkpoint", name="extended")[0] == 0
    assert train(tmp_path, "--epochs", "3", name="extended")[0] == 0
    a, b = (read_metrics(tmp_path / n).drop(columns="time_s") for n in ("straight", "extended"))
    pd.testing.assert_frame_equal(a, b)


BAD_ARGUMENTS = [
    (["--arch", "mlp"], "--arch"),
    (["--optimizer", "lion"], "--optimizer"),
    (["--dataset", "svhn"], "--dataset"),
    (["--depth", "1"], "--depth"),
    (["--width", "0"], "--width"),
    (["--optimizer", "agd", "--lr", "0.1"], "--lr"),
    (["--optimizer", "agd", "--bias"], "agd-bias"),
    (["--optimizer", "adam", "--gain", "2"], "--gain"),
    (["--beta", "2"], "--beta"),
    (["--epochs", "-1"], "--epochs"),
    (["--arch", "vgg16", "--depth", "4"], "--depth"),
]


@pytest.mark.parametrize("extra, named", BAD_ARGUMENTS)
def test_bad_arguments_exit_2_naming_the_argument(tmp_path, capsys, extra, named):
    out = tmp_path / "never"
    argv = ["--dataset", "mnist5k", "--device", "cpu", "--out", str(out), *extra]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_imagenet_without_root_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("IMAGENET_PATH", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["--arch", "resnet50", "--dataset", "imagenet", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "IMAGENET_PATH" in capsys.readouterr().err
    monkeypatch.setenv("IMAGENET_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit):
        main(["--arch", "resnet50", "--dataset", "imagenet", "--out", str(tmp_path / "x")])
    assert "train/" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*SMALL_FCN[:-2], "--device", "cuda", "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "--device" in capsys.readouterr().err


# --- interrupted runs, in real subprocesses ---

RESUME_RUN = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "6", "--width", "128", "--train-bs", "32",
              "--epochs", "6", "--log-steps", "3", "--device", "cpu", "--threads", "1"]


def start_job(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agd.jobs.train", *RESUME_RUN, "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_epochs(job: subprocess.Popen, epochs: int) -> None:
    """Block until the job has printed `epochs` epoch summaries."""
    seen = 0
    while seen < epochs:
        line = job.stdout.readline()
        assert line, f"job ended early: {job.stderr.read()}"
        seen += line.startswith("epoch")


def finish(out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "agd.jobs.train", *RESUME_RUN, "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("straight") / "run"
    finish(out)
    return read_metrics(out).drop(columns="time_s")


@pytest.mark.slow
@pytest.mark.parametrize("epochs_before_kill, delay", [(1, 0.0), (2, 0.15), (4, 0.05)])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path, uninterrupted, epochs_before_kill, delay):
    out = tmp_path / "run"
    job = start_job(out, "--checkpoint-every", "0")
    wait_for_epochs(job, epochs_before_kill)
    time.sleep(delay)  # land somewhere inside the next epoch
    job.kill()
    job.wait()
    if epochs_before_kill > 1:
        assert (out / "checkpoint.pt").exists()  # so the rerun resumes rather than starts over
    finish(out)
    pd.testing.assert_frame_equal(read_metrics(out).drop(columns="time_s"), uninterrupted)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_signal_checkpoints_mid_epoch_and_resumes(tmp_path, uninterrupted, signum):
    out = tmp_path / "run"
    job = start_job(out)  # default interval: no checkpoint would exist without the signal
    wait_for_epochs(job, 2)
    time.sleep(0.1)
    job.send_signal(signum)
    _, stderr = job.communicate(timeout=60)
    assert job.returncode == 128 + signum, stderr
    assert "checkpoint saved" in stderr
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["epoch"] >= 2
    assert not (out / "run.json").exists()
    finish(out)
    pd.testing.assert_frame_equal(read_metrics(out).drop(columns="time_s"), uninterrupted)


def test_writes_are_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous file whole and no temporary behind."""
    from agd import io

    target = tmp_path / "metrics.csv"
    io.write_text(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        io.write_csv(target, ["a"], [{"a": 1}])
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


# --- one job per run directory, files that agree, files others can read ---


@pytest.mark.slow
def test_two_jobs_on_one_directory_never_mix(tmp_path):
    """Started together with different seeds on one --out: one trains, the other is refused, and what is left is
    one run's files, consistent with each other."""
    out = tmp_path / "run"
    jobs = {seed: start_job(out, "--seed", str(seed)) for seed in (1, 2)}
    results = {seed: (job.wait(timeout=300), job.stderr.read()) for seed, job in jobs.items()}
    winners = [seed for seed, (code, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    (loser,) = set(results) - set(winners)
    code, said = results[loser]
    # Refused while the winner holds the directory (75: try later), or after it finished (2: a different run).
    if code == 75:
        assert "in use by another job (pid" in said, said
    else:
        assert code == 2 and "different run" in said, said
    record = json.loads((out / "run.json").read_text())
    assert record["identity"]["seed"] == winners[0] and record["status"] == "completed"
    assert json.loads((out / "identity.json").read_text())["seed"] == winners[0]
    assert record["metrics_sha256"] == hashlib.sha256((out / "metrics.csv").read_bytes()).hexdigest()
    assert not (out / ".lock").exists()


@pytest.mark.slow
def test_a_killed_run_is_not_taken_over_by_another(tmp_path, uninterrupted):
    """Seed 1 killed mid-run, before or after its first checkpoint: seed 2 on the same --out is refused, and
    seed 1 rerun finishes exactly as if never killed."""
    out = tmp_path / "run"
    job = start_job(out, "--checkpoint-every", "1000")  # no checkpoint yet when killed: metrics.csv only
    wait_for_epochs(job, 2)
    job.kill()
    job.wait()
    assert (out / "metrics.csv").exists() and not (out / "checkpoint.pt").exists()
    other = subprocess.run([sys.executable, "-m", "agd.jobs.train", *RESUME_RUN, "--seed", "2", "--out", str(out)],
                           capture_output=True, text=True)
    assert other.returncode == 2 and "different run" in other.stderr, other.stderr
    finish(out)
    pd.testing.assert_frame_equal(read_metrics(out).drop(columns="time_s"), uninterrupted)


def test_a_busy_directory_names_its_holder(tmp_path, capsys):
    from agd.jobs import run_dir

    with run_dir.RunLock(tmp_path / "run"):
        code, _ = train(tmp_path, "--epochs", "0")
        assert code == run_dir.EX_TEMPFAIL
        assert f"in use by another job (pid {os.getpid()} on " in capsys.readouterr().err
    assert train(tmp_path, "--epochs", "0")[0] == 0
    assert not (tmp_path / "run" / ".lock").exists()


def test_outputs_take_the_umask_and_json_is_strict(tmp_path):
    """Colleagues can read results as any file the user writes; a diverged run's record has null, not NaN."""
    code, out = train(tmp_path, "--optimizer", "sgd", "--lr", "1e6", "--epochs", "3")
    assert code == 0
    from agd import io

    for name in ("metrics.csv", "run.json", "identity.json"):
        assert (out / name).stat().st_mode & 0o777 == io.FILE_MODE, name

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    record = json.loads((out / "run.json").read_text(), parse_constant=refuse)
    assert record["status"] == "diverged" and record["final"]["train_loss"] is None


def test_synthetic_data_has_the_datasets_shape_and_trains_two_steps(tmp_path):
    """The smoke run's stand-in for a dataset: no download, CIFAR-100's shape, 2 steps of the given batch."""
    out = tmp_path / "run"
    assert main(["--arch", "fcn", "--dataset", "cifar100", "--depth", "2", "--width", "8", "--train-bs", "16",
                 "--epochs", "1", "--device", "cpu", "--synthetic-data", "--data-dir", str(tmp_path / "none"),
                 "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["steps"] == 2 and record["steps_per_epoch"] == 2 and record["num_params"] == 3 * 32 * 32 * 8 + 8 * 100
    assert not (tmp_path / "none").exists()
