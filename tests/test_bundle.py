"""Bundles: many runs in one process, each equal to its agd-train run, each resumable on its own; runs of one
shape stepped as one stacked network, equal to their solo runs to float tolerance."""

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from agd.jobs import bundle
from agd.jobs.batched import split, stacked
from agd.jobs.train import main as train
from agd.losses import build_loss
from agd.models.build import build_model

EXECUTION = ["--device", "cpu", "--threads", "1", "--checkpoint-every", "0"]
FCN = "--arch fcn --dataset mnist5k --depth 3 --width 32 --epochs 2 --log-steps 3"
MEMBERS = {  # optimizers, rates and seeds side by side
    "agd": "--optimizer agd", "agd-seed2": "--optimizer agd --seed 2", "adam": "--optimizer adam --lr 1e-3",
    "sgd-seed1": "--optimizer sgd --lr 0.1 --seed 1", "agd-bias": "--optimizer agd-bias --bias",
}


def run_bundle(root: Path, members: dict[str, str], *extra: str, base: str = FCN) -> int:
    argv = [*EXECUTION, *extra, "--manifest", str(root / "manifest.json")]
    for name, flags in members.items():
        argv += ["--member", str(root / name), f"{base} {flags}"]
    return bundle.main(argv)


def run_solo(root: Path, name: str, flags: str, base: str = FCN) -> Path:
    assert train([*shlex.split(f"{base} {flags}"), *EXECUTION, "--out", str(root / name)]) == 0
    return root / name


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns="time_s")


def test_runs_one_after_another_are_their_agd_train_runs_exactly(tmp_path):
    assert run_bundle(tmp_path / "bundle", MEMBERS) == 0
    for name, flags in MEMBERS.items():
        solo = run_solo(tmp_path / "solo", name, flags)
        pd.testing.assert_frame_equal(metrics(tmp_path / "bundle" / name), metrics(solo), check_exact=True)
        records = [json.loads((root / "run.json").read_text()) for root in (tmp_path / "bundle" / name, solo)]
        assert records[0]["identity"] == records[1]["identity"] and records[0]["status"] == "completed"
        assert "epoch 2/2" in (tmp_path / "bundle" / name / "train.log").read_text()
    manifest = json.loads((tmp_path / "bundle/manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["completed"] * len(MEMBERS)


def test_a_members_time_counts_its_own_training_only(tmp_path):
    """Every member is built before the first trains; the time of the runs trained before it is not its own."""
    assert run_bundle(tmp_path, MEMBERS) == 0
    times = [pd.read_csv(tmp_path / name / "metrics.csv")["time_s"] for name in MEMBERS]
    for before, member in zip(times, times[1:]):
        assert member.is_monotonic_increasing and member.iloc[0] < before.iloc[-1] / 2


@pytest.mark.parametrize("optimizers", [
    {"agd": "--optimizer agd", "agd-seed2": "--optimizer agd --seed 2"},
    {"adam": "--optimizer adam --lr 1e-3", "adam-2": "--optimizer adam --lr 1e-2"},
    {"sgd": "--optimizer sgd --lr 0.1", "sgd-seed1": "--optimizer sgd --lr 0.01 --seed 1", "agd": "--optimizer agd"},
    {"agd-bias": "--optimizer agd-bias --bias", "adam-bias": "--optimizer adam --lr 1e-3 --bias"},
])
def test_stacked_fcn_runs_equal_their_solo_runs_to_float_tolerance(tmp_path, optimizers):
    assert run_bundle(tmp_path / "bundle", optimizers, "--stack", "yes") == 0
    for name, flags in optimizers.items():
        solo = metrics(run_solo(tmp_path / "solo", name, flags))
        pd.testing.assert_frame_equal(metrics(tmp_path / "bundle" / name), solo, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "vgg16"])
def test_stacked_conv_nets_take_their_solo_runs_first_steps(tmp_path, arch):
    """Stacked conv nets compute each run's gradient to float rounding (see the next test), but a rounding that
    flips a max-pool or ReLU decision changes a step discretely, and BatchNorm nets amplify it over an epoch:
    the runs' init and first logged step are compared, not whole epochs (stacking conv nets is the CUDA
    default, where cuDNN's own algorithms differ run to run as much)."""
    base = f"--arch {arch} --dataset mnist5k --width 4 --epochs 1 --log-steps 1"
    runs = {"agd": "--optimizer agd", "adam": "--optimizer adam --lr 1e-3 --seed 1"}
    assert run_bundle(tmp_path / "bundle", runs, "--stack", "yes", base=base) == 0
    for name, flags in runs.items():
        solo = metrics(run_solo(tmp_path / "solo", name, flags, base=base)).head(2)  # init and the first step
        stacked_run = metrics(tmp_path / "bundle" / name).head(2)
        accuracies = ["train_acc", "test_acc"]  # images on the decision boundary may flip: 3e-3 is 3 of 1000 tests
        pd.testing.assert_frame_equal(stacked_run[accuracies], solo[accuracies], rtol=0, atol=3e-3)
        pd.testing.assert_frame_equal(stacked_run.drop(columns=accuracies), solo.drop(columns=accuracies), rtol=1e-4,
                                      atol=1e-5)


@pytest.fixture
def float64():
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(dtype)


@pytest.mark.parametrize("arch", ["fcn", "resnet18", "vgg16"])
def test_a_stacked_network_gives_each_run_its_own_gradient(arch, float64):
    """In float64, where no rounding flips a max-pool or ReLU decision (in float32 one flip in VGG-16 at width 4
    moves a first-layer gradient by 1e-2), each run's gradient is its solo run's to rounding."""
    torch.manual_seed(0)
    kwargs = dict(depth=3, width=16) if arch == "fcn" else dict(width=4)
    shape = (1, 28, 28) if arch == "fcn" else (1, 32, 32)
    models = [build_model(arch, input_shape=shape, num_classes=10, **kwargs) for _ in range(3)]
    loss = build_loss("mse", 10)
    inputs = [torch.randn(16, *shape) for _ in models]
    labels = [torch.randint(0, 10, (16,)) for _ in models]
    for model, x, y in zip(models, inputs, labels):
        loss(model(x), y).backward()
    solo = [[p.grad.clone() for p in model.parameters()] for model in models]
    for model in models:
        model.zero_grad(set_to_none=True)
    net = stacked(models)
    logits = split(net(torch.cat(inputs, dim=1)), len(models))
    sum(loss(out, y) for out, y in zip(logits, labels)).backward()
    for model, grads in zip(models, solo):
        for p, grad in zip(model.parameters(), grads):
            torch.testing.assert_close(p.grad, grad, rtol=1e-12, atol=1e-12)


def test_a_diverging_run_ends_alone(tmp_path):
    runs = {"sgd-huge": "--optimizer sgd --lr 1e6", "agd": "--optimizer agd"}
    assert run_bundle(tmp_path, runs, "--stack", "yes", base=FCN.replace("--epochs 2", "--epochs 4")) == 0
    assert json.loads((tmp_path / "sgd-huge/run.json").read_text())["status"] == "diverged"
    agd = json.loads((tmp_path / "agd/run.json").read_text())
    assert agd["status"] == "completed" and agd["epochs_completed"] == 4


def test_finished_members_are_skipped(tmp_path, capsys):
    runs = {"agd": "--optimizer agd"}
    assert run_bundle(tmp_path, runs) == 0
    before = (tmp_path / "agd/metrics.csv").read_text()
    assert run_bundle(tmp_path, {**runs, "adam": "--optimizer adam --lr 1e-3"}) == 0
    assert "already completed (epochs 2), nothing to do" in capsys.readouterr().out
    assert (tmp_path / "agd/metrics.csv").read_text() == before
    statuses = {Path(r["out"]).name: r["status"] for r in json.loads((tmp_path / "manifest.json").read_text())["runs"]}
    assert statuses == {"agd": "finished before", "adam": "completed"}


@pytest.mark.parametrize("members, named", [
    ({"agd": "--optimizer agd --lr 0.1"}, "--lr"),
    ({"a": "--optimizer agd", "b": "--arch mlp"}, "--arch"),
])
def test_a_bad_member_refuses_the_whole_bundle_before_anything_runs(tmp_path, capsys, members, named):
    with pytest.raises(SystemExit) as exit_info:
        run_bundle(tmp_path, members)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def member_args(*members: tuple[str, str]) -> list[str]:
    return [arg for out, flags in members for arg in ("--member", out, f"{FCN} {flags}")]


# Members checked against each other and against what the bundle sets, before anything runs: (argv, named).
CONFLICTS = [
    (member_args(("b1", "--seed 0"), ("b1/", "--seed 1")), "are one directory"),
    (member_args(("b1", "--seed 0"), ("./b1", "--seed 1")), "are one directory"),
    (member_args(("b1", "--seed 0"), ("link", "--seed 1")), "are one directory"),
    (member_args(("b1", "--seed 0"), ("b1/inner", "--seed 1")), "lies inside the member b1"),
    (member_args(("b1", "--out elsewhere")), "--out in its FLAGS"),
    (member_args(("b1", "--ou elsewhere")), "--ou is not a run setting"),
    (member_args(("b1", "--device cpu")), "--device is an execution flag"),
    (member_args(("b1", "--lr '0.1")), "cannot be split into flags (No closing quotation)"),
    ([*member_args(("b1", "")), "--epochs", "3"], "--epochs among the flags shared by every member"),
    ([*member_args(("b1", "")), "--out", "x"], "each member's directory is its OUT"),
    ([*member_args(("b1", "")), "--manifest", "b1/m.json"], "--manifest b1/m.json lies inside the member b1"),
    ([*member_args(("b1", "")), "--manifest", "b1"], "--manifest b1 is the member b1's directory"),
    ([*member_args(("b1", "")), "--manifest", "."], "--manifest . is a directory"),
    ([*member_args(("b1", "")), "--manifest", "m" * 300], "File name too long"),
    (member_args(("a" * 300, "")), "File name too long"),
]


@pytest.mark.parametrize("argv, named", CONFLICTS, ids=[named for _, named in CONFLICTS])
def test_members_that_conflict_are_refused_before_anything_runs(tmp_path, capsys, monkeypatch, argv, named):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "link").symlink_to("b1")
    try:
        code = bundle.main([*EXECUTION, *argv])
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    said = capsys.readouterr().err
    assert code == 2 and named in said and "Traceback" not in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]


def test_a_member_held_by_another_job_refuses_the_whole_bundle(tmp_path, capsys):
    """A bundle holds every member's directory before it trains any: one busy member, nothing run, exit 75."""
    from agd.jobs import run_dir

    with run_dir.RunLock(tmp_path / "adam"):
        assert run_bundle(tmp_path, {"agd": "--optimizer agd", "adam": "--optimizer adam --lr 1e-3"}) == 75
        said = capsys.readouterr().err
        assert "adam is in use by another job (pid" in said and "nothing in the bundle was run" in said
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # the free member's directory was let go again


def test_a_bad_member_directory_refuses_the_whole_bundle(tmp_path, capsys):
    (tmp_path / "adam").write_text("a file where the run's directory should be\n")
    assert run_bundle(tmp_path, {"agd": "--optimizer agd", "adam": "--optimizer adam --lr 1e-3"}) == 2
    assert "is a file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adam"]


RESUME = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "3", "--width", "64", "--epochs", "6"]


def bundle_command(root: Path) -> list[str]:
    command = [sys.executable, "-m", "agd.jobs.bundle", *EXECUTION, "--stack", "yes"]
    for name, flags in MEMBERS.items():
        command += ["--member", str(root / name), " ".join(RESUME) + " " + flags]
    return command


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run(bundle_command(root), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def same_as(root: Path, uninterrupted: Path) -> None:
    for name in MEMBERS:
        pd.testing.assert_frame_equal(metrics(root / name), metrics(uninterrupted / name), check_exact=True)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [1.0, 2.5, 4.0])
def test_a_killed_bundle_resumes_every_run_exactly(tmp_path, uninterrupted, delay):
    proc = subprocess.Popen(bundle_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = subprocess.run(bundle_command(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    same_as(tmp_path, uninterrupted)


@pytest.mark.slow
def test_runs_checkpointed_apart_by_a_kill_go_back_together(tmp_path, uninterrupted):
    """A kill between two runs' checkpoint writes: the run ahead goes back to its previous checkpoint."""
    proc = subprocess.Popen(bundle_command(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stacked_runs = [tmp_path / name for name in MEMBERS if name != "agd-bias"]  # agd-bias has another shape
    while not all((run / "checkpoint.prev.pt").exists() for run in stacked_runs):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # every run checkpointed at one step, its previous checkpoint kept
    assert proc.wait() == 128 + signal.SIGTERM
    behind = tmp_path / "adam"
    (behind / "checkpoint.prev.pt").replace(behind / "checkpoint.pt")  # as if killed before this run's write
    done = subprocess.run(bundle_command(tmp_path), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "back to" in (tmp_path / "agd" / "train.log").read_text()
    same_as(tmp_path, uninterrupted)
