"""The peers: each optimizer from its authors' package trains every model family, resumes exactly, and the
protocol, scores and profiles come out as worked by hand."""

import json
import math
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from agd.jobs import bundle
from agd.jobs.train import main as train
from agd.losses import build_loss
from agd.models.build import build_model
from agd.optim import registry
from agd.plan import config as config_schema
from agd.plan import grid, peers
from agd.plan.specs import ImageRun
from agd.tables.peers import profile_score, profiles, ratio, scores, time_to_target

PEERS = ["prodigy", "dadapt-adam", "dog", "sf-adamw", "muon"]
CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
FAMILIES = {"fcn": dict(depth=4, width=16), "vgg16": dict(width=4), "resnet18": dict(width=4)}


@pytest.mark.parametrize("optimizer", PEERS)
@pytest.mark.parametrize("arch", list(FAMILIES))
def test_a_peer_steps_every_model_family(optimizer, arch):
    torch.manual_seed(0)
    shape = (1, 28, 28) if arch == "fcn" else (1, 32, 32)
    model = build_model(arch, input_shape=shape, num_classes=10, depth=FAMILIES[arch].get("depth"),
                        width=FAMILIES[arch]["width"])
    opt = registry.get(optimizer).build(registry.IMAGE, model, ImageRun(arch=arch, optimizer=optimizer).filled())
    loss_fn = build_loss("mse", 10)
    x, y = torch.randn(32, *shape), torch.randint(0, 10, (32,))
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert sum(not torch.equal(a, b) for a, b in zip(before, model.parameters())) >= len(before) - 1
    with registry.get(optimizer).evaluating(opt, model, lambda: [x]):
        assert torch.isfinite(model(x)).all()


FCN = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "3", "--width", "32", "--device", "cpu", "--threads", "1"]


@pytest.mark.parametrize("optimizer", PEERS)
def test_two_epochs_of_a_peer_lower_the_loss(tmp_path, optimizer):
    assert train([*FCN, "--optimizer", optimizer, "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    metrics = pd.read_csv(tmp_path / "run/metrics.csv")
    assert metrics["train_loss"].iloc[-1] < metrics["train_loss"].iloc[0]
    record = json.loads((tmp_path / "run/run.json").read_text())
    assert record["family"] == registry.family_of(optimizer) and record["init"] == registry.PYTORCH_DEFAULT


RESUME = [*FCN[:-4], "--depth", "3", "--width", "64", "--epochs", "4", "--log-steps", "2", "--device", "cpu",
          "--threads", "1", "--checkpoint-every", "0"]


def job(out: Path, optimizer: str) -> list[str]:
    return [sys.executable, "-m", "agd.jobs.train", *RESUME[:2], *RESUME[2:], "--optimizer", optimizer,
            "--out", str(out)]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", PEERS)
def test_a_killed_peer_resumes_to_the_same_numbers(tmp_path, optimizer):
    straight = subprocess.run(job(tmp_path / "straight", optimizer), capture_output=True, text=True)
    assert straight.returncode == 0, straight.stderr[-2000:]
    proc = subprocess.Popen(job(tmp_path / "killed", optimizer), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    seen = 0
    while seen < 2:  # two epoch lines: a checkpoint exists, and the kill lands in the next epoch
        seen += proc.stdout.readline().startswith("epoch")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = subprocess.run(job(tmp_path / "killed", optimizer), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "killed/metrics.csv").drop(columns="time_s"),
                                  pd.read_csv(tmp_path / "straight/metrics.csv").drop(columns="time_s"),
                                  check_exact=True)


# --- the protocol ---

def preset(name: str) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["preset"] = name
    config_schema.validate(config)
    return config


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_the_protocol_tunes_on_one_seed_and_judges_on_three_others(name):
    config = preset(name)
    block = config["presets"][name]["peers"]
    assert block["seeds"]["tuning"] not in block["seeds"]["evaluation"] and len(block["seeds"]["evaluation"]) >= 3
    members = grid.membership(config)
    table = members[members["figure"] == "peers"]
    for (cell, optimizer), rows in table.groupby(["panel", "optimizer"]):
        if registry.get(optimizer).tuned:
            assert set(rows["role"]) == {"tuning"} and set(rows["seed"]) == {block["seeds"]["tuning"]}
            assert sorted(rows["lr"]) == sorted(block["optimizers"][optimizer])
        else:
            assert set(rows["role"]) == {"evaluation"} and sorted(rows["seed"]) == block["seeds"]["evaluation"]
    jobs = peers.evaluations(config["presets"][name], config["tuning_rule"])
    tuned = [o for o in block["optimizers"] if registry.get(o).tuned]
    assert len(jobs) == len(block["cells"]) * len(tuned)
    assert all(job["seeds"] == block["seeds"]["evaluation"] for job in jobs)


def test_a_tuning_seed_among_the_evaluation_seeds_is_refused():
    config = preset("quick")
    config["presets"]["quick"]["peers"]["seeds"]["evaluation"] = [0, 1, 2]
    with pytest.raises(grid.ConfigError, match="tuning seed 0 is among the evaluation seeds"):
        grid.membership(config)


def test_the_sensitivity_knob_spans_decades_around_each_default():
    assert peers.knob_values("agd", 2) == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert peers.knob_values("sf-adamw", 1) == pytest.approx([0.00025, 0.0025, 0.025])


def test_the_chosen_rate_is_reused_on_the_evaluation_seeds(tmp_path):
    """A grid of two rates, then a tuned-evaluation job: it runs the better rate on the evaluation seeds."""
    runs = tmp_path / "runs"
    grid_runs = [ImageRun(arch="fcn", dataset="mnist5k", depth=3, width=32, optimizer="sgd", lr=lr, epochs=2)
                 for lr in (1e-4, 0.1)]
    members = []
    for run in grid_runs:
        members += ["--member", str(runs / run.run_id()), shlex.join(run.argv())]
    execution = ["--device", "cpu", "--threads", "1"]
    assert bundle.main([*execution, *members]) == 0
    manifest = tmp_path / "tuned.json"
    assert bundle.main([*execution, "--tune-from", *(str(runs / r.run_id()) for r in grid_runs), "--tune-epochs", "2",
                        "--evaluate-seeds", "1", "2", "--manifest", str(manifest)]) == 0
    written = json.loads(manifest.read_text())
    assert written["tuned"]["lr"] == 0.1 and set(written["tuned"]["scores"]) == {"0.0001", "0.1"}
    for seed, entry in zip((1, 2), written["runs"]):
        expected = runs / ImageRun(arch="fcn", dataset="mnist5k", depth=3, width=32, optimizer="sgd", lr=0.1,
                                   seed=seed, epochs=2).run_id()
        assert Path(entry["out"]) == expected and entry["status"] == "completed"
        assert json.loads((expected / "run.json").read_text())["identity"]["lr"] == 0.1


def test_a_grid_run_whose_metrics_changed_is_not_tuned_on(tmp_path, capsys):
    """The rate is chosen from records checked as a rerun checks them: a truncated metrics.csv is refused."""
    run = ImageRun(arch="fcn", dataset="mnist5k", depth=3, width=32, optimizer="sgd", lr=0.1, epochs=1)
    out = tmp_path / "runs" / run.run_id()
    execution = ["--device", "cpu", "--threads", "1"]
    assert bundle.main([*execution, "--member", str(out), shlex.join(run.argv())]) == 0
    lines = (out / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(lines[:-1]))
    with pytest.raises(SystemExit) as refused:
        bundle.main([*execution, "--tune-from", str(out), "--tune-epochs", "1", "--evaluate-seeds", "1"])
    assert refused.value.code == 2
    assert "metrics.csv differs from the one the run ended with" in capsys.readouterr().err
    assert not (tmp_path / "runs" / run.run_id().replace("seed0", "seed1")).exists()


# --- scores and profiles, by hand ---

def rows(cell: str, optimizer: str, seed: int, accuracies: list[float]) -> list[dict]:
    return [dict(panel=cell, optimizer=optimizer, role="evaluation", run=f"{cell}/{optimizer}/{seed}", seed=seed,
                 kind="epoch", epoch=epoch, test_acc=acc, train_loss=1.0 - acc, time_s=10.0 * epoch, status="completed",
                 dataset="mnist5k", arch="fcn", epochs=3, lr=1e-3 if optimizer == "adam" else math.nan,
                 final=epoch == len(accuracies) - 1)
            for epoch, acc in enumerate(accuracies)]


def test_time_to_target_ratio_and_score_as_worked_by_hand():
    table = pd.DataFrame(
        # Cell a: Adam's best accuracies 0.6, 0.7, 0.8 -> target 0.7 (the median).
        rows("a", "adam", 1, [0.1, 0.5, 0.6, 0.6]) + rows("a", "adam", 2, [0.1, 0.7, 0.7, 0.7])
        + rows("a", "adam", 3, [0.1, 0.6, 0.8, 0.8])
        # AGD reaches 0.7 at epochs 1, 1 and 3 -> median 1; Adam at inf, 1, 2 -> median 2.
        + rows("a", "agd", 1, [0.1, 0.7, 0.7, 0.7]) + rows("a", "agd", 2, [0.1, 0.75, 0.8, 0.8])
        + rows("a", "agd", 3, [0.1, 0.5, 0.6, 0.7])
        # Cell b: Adam's best 0.5 everywhere -> target 0.5; AGD never gets there.
        + rows("b", "adam", 1, [0.1, 0.3, 0.5, 0.5]) + rows("b", "adam", 2, [0.1, 0.3, 0.5, 0.5])
        + rows("b", "adam", 3, [0.1, 0.3, 0.5, 0.5])
        + rows("b", "agd", 1, [0.1, 0.2, 0.3, 0.4]) + rows("b", "agd", 2, [0.1, 0.2, 0.3, 0.4])
        + rows("b", "agd", 3, [0.1, 0.2, 0.3, 0.4]))
    scored = scores(table).set_index(["cell", "optimizer"])
    assert scored.loc[("a", "adam"), "target"] == pytest.approx(0.7)
    assert scored.loc[("a", "agd"), "epochs_to_target"] == 1 and scored.loc[("a", "adam"), "epochs_to_target"] == 2
    assert scored.loc[("a", "agd"), "seconds_to_target"] == 10.0
    assert scored.loc[("a", "agd"), "ratio"] == 1 and scored.loc[("a", "adam"), "ratio"] == 2
    assert math.isinf(scored.loc[("b", "agd"), "ratio"]) and scored.loc[("b", "adam"), "ratio"] == 1
    # B: AGD ratios (1, inf) -> ((4 - 1) + 0) / 3 / 2 = 0.5; Adam (2, 1) -> ((4 - 2) + (4 - 1)) / 3 / 2 = 5/6.
    assert scored.loc[("a", "agd"), "score"] == pytest.approx(0.5)
    assert scored.loc[("a", "adam"), "score"] == pytest.approx(5 / 6)
    assert scored.loc[("a", "agd"), "final_test_acc_mean"] == pytest.approx((0.7 + 0.8 + 0.7) / 3)
    curve = profiles(scored.reset_index()).set_index(["optimizer", "tau"])["rho"]
    assert curve[("agd", 1.0)] == 0.5 and curve[("adam", 1.0)] == 0.5 and curve[("adam", 2.0)] == 1.0


def test_profile_score_and_ratio_edges():
    assert profile_score([1.0, 1.0]) == 1.0 and profile_score([math.inf]) == 0.0 and profile_score([4.0]) == 0.0
    assert profile_score([2.5]) == pytest.approx(0.5)
    assert ratio(math.inf, 1.0) == math.inf and ratio(3.0, 3.0) == 1.0
    frame = pd.DataFrame(dict(epoch=[0, 1, 2], test_acc=[0.1, 0.2, 0.3], time_s=[0.0, 5.0, 9.0]))
    assert time_to_target(frame, 0.25) == (2.0, 9.0) and time_to_target(frame, 0.9) == (math.inf, math.inf)


@pytest.mark.parametrize("optimizer", ["adam", "prodigy", "dog"])
def test_an_orthogonal_init_run_starts_from_the_weights_agd_starts_from(optimizer):
    def start(name: str, init: str = registry.OWN_INIT) -> list[torch.Tensor]:
        torch.manual_seed(3)
        model = build_model("fcn", input_shape=(1, 28, 28), num_classes=10, depth=4, width=16)
        registry.get(name).build(registry.IMAGE, model, ImageRun(optimizer=name, init=init).filled())
        return [p.detach().clone() for p in model.parameters()]

    agd, own, orthogonal = start("agd"), start(optimizer), start(optimizer, registry.ORTHOGONAL)
    assert all(torch.equal(a, b) for a, b in zip(agd, orthogonal))
    assert not any(torch.equal(a, b) for a, b in zip(agd, own))
    agd_from_pytorch = start("agd", registry.PYTORCH_DEFAULT)
    assert all(torch.equal(a, b) for a, b in zip(own, agd_from_pytorch))


def test_an_optimizers_own_init_named_is_one_run():
    assert ImageRun(optimizer="agd", init=registry.ORTHOGONAL).filled() == ImageRun(optimizer="agd").filled()
    ablation = ImageRun(optimizer="adam", init=registry.ORTHOGONAL).filled()
    assert ablation.run_id().endswith("/adam-lr1e-03-initorthogonal/seed0")
    assert ImageRun(optimizer="adam").filled().identity() == {  # a run recorded before --init keeps its identity
        k: v for k, v in ablation.identity().items() if k != "init"}
