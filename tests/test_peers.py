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


def test_dog_at_a_rate_that_blows_up_ends_as_diverged_not_as_a_crash(tmp_path):
    """DoG asserts on a gradient that is not finite; the sensitivity study's x100 rate makes one on the depth-8
    FCN, and the run is recorded as diverged, as any run whose loss is not finite."""
    out = tmp_path / "run"
    assert train(["--arch", "fcn", "--dataset", "mnist5k", "--depth", "8", "--width", "64", "--device", "cpu",
                  "--threads", "1", "--optimizer", "dog", "--lr", "100", "--epochs", "2", "--val-size", "500",
                  "--out", str(out)]) == 0
    assert json.loads((out / "run.json").read_text())["status"] == "diverged"


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
    assert (table["val_size"] > 0).all()  # every run holds out its cell's validation split
    for (cell, optimizer), rows in table.groupby(["panel", "optimizer"]):
        if registry.get(optimizer).tuned:  # before its study decides, only its initial grid on the tuning seed
            assert set(rows["role"]) == {"tuning"} and set(rows["seed"]) == {block["seeds"]["tuning"]}
            assert sorted(rows["lr"]) == sorted(block["optimizers"][optimizer])
        else:
            evaluation = rows[rows["role"] == "evaluation"]
            assert sorted(evaluation["seed"]) == block["seeds"]["evaluation"]
            assert set(rows["role"]) <= {"evaluation", "ablation"}
    studies = peers.studies(config["presets"][name])
    tuned = [o for o in block["optimizers"] if registry.get(o).tuned]
    assert len(studies) == len({study.name for study in studies}) == sum(
        peers.applies(optimizer, cell) for cell in block["cells"].values() for optimizer in tuned)
    assert all(study.rule in ("final_val_acc", "best_val_acc", "final_val_loss") for study in studies)


def test_a_study_adds_its_chosen_rates_runs_once_it_has_decided():
    config = preset("quick")
    block = config["presets"]["quick"]["peers"]
    study = next(s for s in peers.studies(config["presets"]["quick"]) if s.optimizer == "adam"
                 and s.cell in block.get("init_ablation", []))
    rows = pd.DataFrame(peers.decided_members(config["presets"]["quick"], study, [1e-4, 1e-3, 1e-2, 1e-1], 1e-2))
    peers_rows = rows[rows["figure"] == "peers"]
    assert sorted(peers_rows.loc[peers_rows["role"] == "tuning", "lr"]) == [1e-4, 1e-3, 1e-2, 1e-1]
    evaluation = peers_rows[peers_rows["role"] == "evaluation"]
    assert sorted(evaluation["seed"]) == block["seeds"]["evaluation"] and set(evaluation["lr"]) == {1e-2}
    ablation = peers_rows[peers_rows["role"] == "ablation"]
    assert set(ablation["init"]) == {registry.ORTHOGONAL} and set(ablation["lr"]) == {1e-2}


def test_the_peers_block_chooses_on_validation_only():
    config = preset("quick")
    config["presets"]["quick"]["peers"]["tuning"] = {"rule": "final_test_acc"}
    with pytest.raises(grid.ConfigError, match="does not read the validation split"):
        grid.membership(config)


def test_a_tuning_seed_among_the_evaluation_seeds_is_refused():
    config = preset("quick")
    config["presets"]["quick"]["peers"]["seeds"]["evaluation"] = [0, 1, 2]
    with pytest.raises(grid.ConfigError, match="tuning seed 0 is among the evaluation seeds"):
        grid.membership(config)


def test_the_sensitivity_knob_spans_decades_around_each_default():
    assert peers.knob_values("agd", 2) == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert peers.knob_values("sf-adamw", 1) == pytest.approx([0.00025, 0.0025, 0.025])


# --- scores and profiles, by hand ---

def rows(cell: str, optimizer: str, seed: int, accuracies: list[float], role: str = "evaluation") -> list[dict]:
    """A run's epoch rows: validation accuracy as given, test accuracy a little below it."""
    return [dict(panel=cell, optimizer=optimizer, role=role, run=f"{cell}/{optimizer}/{seed}/{role}", seed=seed,
                 kind="epoch", epoch=epoch, val_acc=acc, test_acc=acc - 0.01, train_loss=1.0 - acc, time_s=10.0 * epoch,
                 status="completed", reason="", dataset="mnist5k", arch="fcn", epochs=len(accuracies) - 1,
                 lr=1e-3 if optimizer == "adam" else math.nan, final=epoch == len(accuracies) - 1)
            for epoch, acc in enumerate(accuracies)]


def hand_table() -> pd.DataFrame:
    return pd.DataFrame(
        # Cell a: Adam's best validation accuracies 0.6, 0.7, 0.8 -> target 0.7 (the median).
        rows("a", "adam", 1, [0.1, 0.5, 0.6, 0.6]) + rows("a", "adam", 2, [0.1, 0.7, 0.7, 0.7])
        + rows("a", "adam", 3, [0.1, 0.6, 0.8, 0.8])
        # AGD reaches 0.7 at epochs 1, 1 and 3 -> median 1; Adam at inf, 1, 2 -> median 2.
        + rows("a", "agd", 1, [0.1, 0.7, 0.7, 0.7]) + rows("a", "agd", 2, [0.1, 0.75, 0.8, 0.8])
        + rows("a", "agd", 3, [0.1, 0.5, 0.6, 0.7])
        # Cell b: Adam's best 0.5 everywhere -> target 0.5; AGD never gets there.
        + rows("b", "adam", 1, [0.1, 0.3, 0.5, 0.5]) + rows("b", "adam", 2, [0.1, 0.3, 0.5, 0.5])
        + rows("b", "adam", 3, [0.1, 0.3, 0.5, 0.5])
        + rows("b", "agd", 1, [0.1, 0.2, 0.3, 0.4]) + rows("b", "agd", 2, [0.1, 0.2, 0.3, 0.4])
        + rows("b", "agd", 3, [0.1, 0.2, 0.3, 0.4])
        # Adam's studies: 4 grid runs of 3 epochs on cell a, 2 on cell b.
        + sum((rows("a", "adam", 0, [0.1, 0.2, 0.3, 0.4], role="tuning") for _ in range(1)), [])
        + [dict(r, run=f"a/adam/grid{k}") for k in range(1, 4) for r in rows("a", "adam", 0, [0.1, 0.2, 0.3, 0.4],
                                                                            role="tuning")]
        + [dict(r, run=f"b/adam/grid{k}") for k in range(2) for r in rows("b", "adam", 0, [0.1, 0.2, 0.3, 0.4],
                                                                         role="tuning")])


def test_time_to_target_ratio_and_score_as_worked_by_hand():
    scored = scores(hand_table()).set_index(["cell", "optimizer"])
    assert scored.loc[("a", "adam"), "target"] == pytest.approx(0.7)
    assert scored.loc[("a", "agd"), "epochs_to_target"] == 1 and scored.loc[("a", "adam"), "epochs_to_target"] == 2
    assert (scored.loc[("a", "agd"), "epochs_to_target_min"], scored.loc[("a", "agd"), "epochs_to_target_max"]) == (1, 3)
    assert scored.loc[("a", "agd"), "ratio"] == 1 and scored.loc[("a", "adam"), "ratio"] == 2
    assert math.isinf(scored.loc[("b", "agd"), "ratio"]) and scored.loc[("b", "adam"), "ratio"] == 1
    # B: AGD ratios (1, inf) -> ((4 - 1) + 0) / 3 / 2 = 0.5; Adam (2, 1) -> ((4 - 2) + (4 - 1)) / 3 / 2 = 5/6.
    assert scored.loc[("a", "agd"), "B"] == pytest.approx(0.5)
    assert scored.loc[("a", "adam"), "B"] == pytest.approx(5 / 6)
    assert scored.loc[("a", "agd"), "final_test_acc_mean"] == pytest.approx((0.7 + 0.8 + 0.7) / 3 - 0.01)
    # Tuning counted: Adam's 4 grid runs of 3 epochs on a (12) and 2 on b (6) come before its evaluation run's.
    assert scored.loc[("a", "adam"), "tuning_epochs"] == 12 and scored.loc[("b", "adam"), "tuning_runs"] == 2
    assert scored.loc[("a", "adam"), "epochs_to_target_tuning_inclusive"] == 14
    assert scored.loc[("b", "adam"), "epochs_to_target_tuning_inclusive"] == 8
    # Tuning-inclusive: on a, AGD 1 vs Adam 14 -> Adam's ratio 14; on b Adam alone reaches it: 1. B: (0 + 3/3) / 2.
    assert scored.loc[("a", "adam"), "ratio_tuning_inclusive"] == 14
    assert scored.loc[("a", "adam"), "B_tuning_inclusive"] == pytest.approx(0.5)
    assert scored.loc[("a", "agd"), "B_tuning_inclusive"] == pytest.approx(0.5)
    curve = profiles(scored.reset_index())
    plain = curve[curve["kind"] == "plain"].set_index(["optimizer", "tau"])["rho"]
    assert plain[("agd", 1.0)] == 0.5 and plain[("adam", 1.0)] == 0.5 and plain[("adam", 2.0)] == 1.0


def test_the_bootstrap_interval_of_b_on_a_toy_table():
    scored = scores(hand_table()).set_index(["cell", "optimizer"])
    # AGD on cell a: seeds reach Adam's target at (1, 1, 3) epochs; b never. Resampling seeds moves the target
    # and the medians, so B varies, but B never leaves [0, 1] and the point estimate lies inside its interval.
    for optimizer in ("agd", "adam"):
        low, high, b = (scored.loc[("a", optimizer), column] for column in ("B_low", "B_high", "B"))
        assert 0 <= low <= b <= high <= 1
    assert scored.loc[("a", "agd"), "B_low"] < scored.loc[("a", "agd"), "B_high"]  # the seeds disagree
    # Identical seeds leave nothing to resample: the interval is the point.
    same = pd.DataFrame(rows("c", "adam", 1, [0.1, 0.5]) + rows("c", "adam", 2, [0.1, 0.5])
                        + rows("c", "agd", 1, [0.1, 0.2]) + rows("c", "agd", 2, [0.1, 0.2]))
    flat = scores(same).set_index("optimizer")
    assert (flat.loc["adam", "B_low"], flat.loc["adam", "B_high"]) == (1.0, 1.0)
    assert (flat.loc["agd", "B_low"], flat.loc["agd", "B_high"]) == (0.0, 0.0)


def test_the_papers_peers_section_gives_b_with_its_interval_and_tuning_counted():
    from agd.tables.paper import peers_tex

    tex = peers_tex(scores(hand_table()), {"agd": "AGD"})
    scored = scores(hand_table()).set_index(["cell", "optimizer"])
    agd = scored.loc[("a", "agd")]
    assert f"AGD & {agd['B']:.2f} [{agd['B_low']:.2f}, {agd['B_high']:.2f}] & {agd['B_tuning_inclusive']:.2f} &" in tex
    assert tex.count("\\\\") == 1 + scores(hand_table())["optimizer"].nunique()


def test_profile_score_and_ratio_edges():
    assert profile_score([1.0, 1.0]) == 1.0 and profile_score([math.inf]) == 0.0 and profile_score([4.0]) == 0.0
    assert profile_score([2.5]) == pytest.approx(0.5)
    assert ratio(math.inf, 1.0) == math.inf and ratio(3.0, 3.0) == 1.0
    frame = pd.DataFrame(dict(epoch=[0, 1, 2], val_acc=[0.1, 0.2, 0.3], time_s=[0.0, 5.0, 9.0]))
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


# --- the tuning studies ---

def test_a_grid_whose_best_is_at_an_edge_extends_a_decade_on_that_side():
    from agd.plan.tuning import decide

    top = decide({1e-3: 0.5, 1e-2: 0.7, 1e-1: 0.9})
    assert top.chosen is None and top.extend == 1.0 and "top" in top.reason
    bottom = decide({1e-3: 0.9, 1e-2: 0.7, 1e-1: 0.1})
    assert bottom.chosen is None and bottom.extend == 1e-4
    inside = decide({1e-3: 0.5, 1e-2: 0.9, 1e-1: 0.1})
    assert inside.chosen == 1e-2 and inside.extend is None
    # At the bound the edge stays: SGD best at 10, the largest rate a study tries.
    bound = decide({1.0: 0.5, 10.0: 0.9}, bounds=(1e-6, 10.0))
    assert bound.chosen == 10.0 and "bound" in bound.reason
    # Every run diverged: the smallest rate is the best (ties go to the smaller), and the grid reaches lower.
    diverged = decide({1e-2: float("-inf"), 1e-1: float("-inf")})
    assert diverged.extend == 1e-3
    # A smoke run, or partial results, never extend.
    assert decide({1e-3: 0.5, 1e-2: 0.9}, extend=False).chosen == 1e-2


def test_the_validation_rules_score_on_the_validation_split():
    from agd.plan.tuning import tuning_score

    rows = pd.DataFrame(dict(kind="epoch", epoch=[0, 1, 2], val_acc=[0.1, 0.8, 0.7], test_acc=[0.1, 0.2, 0.99],
                             val_loss=[2.0, 0.5, 0.6]))
    assert tuning_score(rows, "final_val_acc") == 0.7 and tuning_score(rows, "best_val_acc") == 0.8
    assert tuning_score(rows, "final_val_loss") == -0.6
    assert tuning_score(rows.drop(columns="val_acc"), "final_val_acc") == float("-inf")
