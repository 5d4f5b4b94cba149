"""The peers block's GPT cell: which optimizers train it, how its studies choose (validation loss), what the job is
told (a held-out test split), and how its scores read a loss (lower is better) over iterations."""

import json
import math
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agd.jobs import lm_bundle
from agd.optim import registry
from agd.plan import config as config_schema
from agd.plan import grid, lm_grid, peers, training_jobs
from agd.plan.specs import LM_BUNDLE_MODULE, LMRun
from agd.tables.peers import scores

CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())


def preset(name: str) -> dict:
    config = json.loads(json.dumps(CONFIG))
    config["preset"] = name
    config_schema.validate(config)
    return config


def gpt_cells(config: dict) -> dict:
    block = config["presets"][config["preset"]]["peers"]
    return {name: cell for name, cell in block["cells"].items() if peers.job_of(cell) == registry.LM}


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_every_optimizer_that_trains_a_gpt_runs_on_the_gpt_cell_and_no_other(name):
    config = preset(name)
    block = config["presets"][name]["peers"]
    (cell,) = gpt_cells(config)
    table = lm_grid.membership(config)
    rows = table[(table["figure"] == peers.FIGURE) & (table["panel"] == cell)]
    untuned = {o for o in block["optimizers"] if not registry.get(o).tuned and registry.LM in registry.get(o).jobs}
    assert set(rows.loc[rows["role"] == peers.EVALUATION, "optimizer"]) == untuned
    assert set(rows.loc[rows["role"] == peers.TUNING, "optimizer"]) == {
        o for o in block["optimizers"] if registry.get(o).tuned and registry.LM in registry.get(o).jobs}
    assert {"agd", "prodigy", "dadapt-adam", "dog", "sf-adamw"} <= untuned
    assert not {"adam", "sgd"} & set(rows["optimizer"])  # image-only optimizers
    assert rows["test_split"].all()  # every GPT run holds out its test split
    image = grid.membership(config)
    assert "adamw" not in set(image.loc[image["figure"] == peers.FIGURE, "optimizer"])
    assert cell not in set(image["panel"])


def test_a_gpt_study_chooses_on_the_validation_loss_and_knows_every_run_it_may_ask_for():
    config = preset("quick")
    block = config["presets"]["quick"]["peers"]
    (cell,) = gpt_cells(config)
    studies = [s for s in peers.studies(config["presets"]["quick"]) if s.cell == cell]
    assert {s.optimizer for s in studies} == {"adamw", "muon"}
    assert all(s.rule == peers.LM_RULE == "final_val_loss" and s.job == registry.LM for s in studies)
    assert all(s.epochs == block["cells"][cell]["max_iters"] for s in studies)
    decided = peers.decided_lm_runs(block, studies)
    jobs = peers.decided_jobs(studies)  # a decision's GPT runs are a bundle, as an image study's
    adamw = next(s for s in studies if s.optimizer == "adamw")
    for lr in peers.reachable_rates(adamw):
        assert jobs[peers.decided_bundle(adamw, peers.CHOSEN, lr)] == (adamw, peers.CHOSEN, lr)
        for role, run in adamw.chosen_runs(block, lr):
            assert run.run_id() in decided and isinstance(run, LMRun) and run.lr == lr
    # AdamW's warmup is the one the cell fixes; its cosine spans the cell's iterations.
    run = adamw.grid_run(block, 1e-3)
    assert run.warmup_iters == block["cells"][cell]["settings"]["adamw"]["warmup_iters"]
    assert run.lr_decay_iters == run.max_iters == block["cells"][cell]["max_iters"]
    job = training_jobs.of_runs([run], config["presets"]["quick"], config, "lm_runs", "chosen")
    _, _, ((parsed, _),) = lm_bundle.parse(shlex.split(job.flags))
    assert job.module == LM_BUNDLE_MODULE and parsed == run


@pytest.mark.parametrize("change, message", [
    (lambda block, cell: block.update(init_ablation=[cell]), "not an image cell"),
    (lambda block, cell: block.update(sensitivity={"cell": cell, "decades": 1}), "not an image cell"),
    (lambda block, cell: block["cells"][cell].update(settings={"adamw": {"lr": 0.1}}), "lr is tuned"),
    (lambda block, cell: block["cells"][cell].update(settings={"sgd": {"warmup_iters": 3}}), "trains a GPT"),
    (lambda block, cell: block["cells"][cell].update(eval_interval=10 ** 6), "is not below max_iters"),
    (lambda block, cell: block["cells"][cell].update(eval_interval=block["cells"][cell]["max_iters"]),
     "is not below max_iters"),
    # The cell's target is the tuned AdamW's: without AdamW every optimizer would score 0 there.
    (lambda block, cell: [block["optimizers"].pop("adamw"), block["cells"][cell].pop("settings")],
     "its target is the tuned adamw's best validation loss, and adamw is not among peers.optimizers"),
    (lambda block, cell: block["optimizers"].pop("adam"),
     "its target is the tuned adam's best validation acc, and adam is not among peers.optimizers"),
    (lambda block, cell: block["cells"][cell].update(text="openwebtext"), "a text that is always there"),
    # AdamW's grid starts at 1e-4 and may extend down to the bound 1e-6, below this floor of its cosine.
    (lambda block, cell: block["cells"][cell]["settings"]["adamw"].update(min_lr=1e-4),
     r"would refuse a run a study may come to ask for \(adamw at lr 1e-06\): --min-lr"),
])
def test_a_gpt_cell_used_where_it_cannot_be_is_refused_by_name(change, message):
    config = preset("quick")
    block = config["presets"]["quick"]["peers"]
    (cell,) = gpt_cells(config)
    change(block, cell)
    with pytest.raises(grid.ConfigError, match=message):
        grid.membership(config)
        lm_grid.membership(config)


def test_an_optimizer_of_the_block_that_trains_none_of_its_cells_is_refused():
    config = preset("quick")
    block = config["presets"]["quick"]["peers"]
    for name in list(gpt_cells(config)):
        del block["cells"][name]
    with pytest.raises(grid.ConfigError, match="peers.optimizers.adamw: no cell of the block is one it trains"):
        grid.membership(config)


@pytest.mark.parametrize("change, message", [
    (lambda cell: cell.update(epochs=3), "epochs"),
    # A setting is one the optimizer takes, named where it is written.
    (lambda cell: cell["settings"].update(muon={"beta2": 0.9}), r"settings.muon: .*'beta2' was unexpected"),
    (lambda cell: cell["settings"].update(sgd={"warmup_iters": 3}), r"settings: .*'sgd' was unexpected"),
])
def test_a_gpt_cell_with_a_key_it_does_not_take_is_refused_by_the_schema(change, message):
    config = json.loads(json.dumps(CONFIG))
    config["preset"] = "quick"
    (cell,) = (c for c in config["presets"]["quick"]["peers"]["cells"].values() if "text" in c)
    change(cell)
    with pytest.raises(grid.ConfigError, match=message):
        config_schema.validate(config)


def test_a_rate_fixed_by_a_gpt_cell_is_refused_by_name_through_the_schema():
    config = json.loads(json.dumps(CONFIG))
    config["preset"] = "quick"
    (cell,) = (c for c in config["presets"]["quick"]["peers"]["cells"].values() if "text" in c)
    cell["settings"]["adamw"]["lr"] = 0.1
    config_schema.validate(config)
    with pytest.raises(grid.ConfigError, match="settings.adamw: lr is tuned"):
        grid.membership(config)


# --- scores of a loss, by hand ---

def loss_rows(optimizer: str, seed: int, losses: list[float], role: str = "evaluation") -> list[dict]:
    """A GPT run's rows every 10 iterations: validation loss as given, test loss a little above it."""
    return [dict(panel="gpt", job=registry.LM, optimizer=optimizer, role=role, run=f"gpt/{optimizer}/{seed}/{role}",
                 seed=seed, kind="epoch", epoch=10 * k, val_loss=loss, test_loss=loss + 0.1, train_loss=loss,
                 time_s=float(k), status="completed", reason="", text="python_docs_char", dataset=None, arch=None,
                 epochs=10 * (len(losses) - 1), lr=1e-3 if optimizer == "adamw" else math.nan,
                 final=k == len(losses) - 1)
            for k, loss in enumerate(losses)]


def test_a_gpt_cells_target_is_adamws_median_best_validation_loss_reached_from_above():
    table = pd.DataFrame(
        # AdamW's best validation losses 2.0, 1.8, 1.6 -> target 1.8 (the median).
        loss_rows("adamw", 1, [4.0, 3.0, 2.0]) + loss_rows("adamw", 2, [4.0, 2.5, 1.8])
        + loss_rows("adamw", 3, [4.0, 1.6, 1.7])
        # AGD gets to 1.8 or below at iterations 10, 10, 20 -> median 10; AdamW at inf, 20, 10 -> 20.
        + loss_rows("agd", 1, [4.0, 1.8, 1.5]) + loss_rows("agd", 2, [4.0, 1.7, 1.6])
        + loss_rows("agd", 3, [4.0, 2.0, 1.8])
        # Prodigy never gets below 2.
        + loss_rows("prodigy", 1, [4.0, 3.0, 2.1]) + loss_rows("prodigy", 2, [4.0, 3.0, 2.2])
        + loss_rows("prodigy", 3, [4.0, 3.0, 2.3])
        # AdamW's study: 3 grid runs of 20 iterations.
        + [dict(r, run=f"gpt/adamw/grid{k}") for k in range(3) for r in loss_rows("adamw", 0, [4.0, 3.0, 2.5],
                                                                                   role="tuning")])
    scored = scores(table).set_index("optimizer")
    assert set(scored["metric"]) == {"val_loss"} and set(scored["time_unit"]) == {"iteration"}
    assert scored.loc["adamw", "target"] == pytest.approx(1.8)
    assert scored.loc["agd", "epochs_to_target"] == 10 and scored.loc["adamw", "epochs_to_target"] == 20
    assert math.isinf(scored.loc["prodigy", "epochs_to_target"]) and scored.loc["prodigy", "reached"] == 0
    assert scored.loc["agd", "ratio"] == 1 and scored.loc["adamw", "ratio"] == 2
    assert scored.loc["agd", "final_test_loss_mean"] == pytest.approx((1.5 + 1.6 + 1.8) / 3 + 0.1)
    assert scored.loc["adamw", "tuning_epochs"] == 60
    assert scored.loc["adamw", "epochs_to_target_tuning_inclusive"] == 80
    assert set(scored["cells"]) == {1} and scored.loc["agd", "dataset"] == "python_docs_char"
    assert scored.loc["agd", "B"] == pytest.approx(1.0) and scored.loc["adamw", "B"] == pytest.approx(2 / 3)


def test_an_optimizer_whose_runs_all_failed_on_a_cell_has_b_inside_its_interval():
    """AGD's runs on the second cell all failed (no row): it never reaches that cell's target, in B and in every
    bootstrap replicate alike."""
    first = (loss_rows("adamw", 1, [4.0, 2.0]) + loss_rows("adamw", 2, [4.0, 2.0])
             + loss_rows("agd", 1, [4.0, 1.9]) + loss_rows("agd", 2, [4.0, 1.9]))
    second = [dict(row, panel="gpt2") for row in loss_rows("adamw", 1, [4.0, 2.0]) + loss_rows("adamw", 2, [4.0, 2.0])]
    failed = [dict(panel="gpt2", job=registry.LM, optimizer="agd", role="evaluation", run=f"gpt2/agd/{seed}",
                   seed=seed, kind=None, epoch=math.nan, status="failed", reason="failed: see its train.log",
                   text="python_docs_char", dataset=None, arch=None, epochs=10, lr=math.nan, final=False)
              for seed in (1, 2)]
    scored = scores(pd.DataFrame(first + second + failed)).set_index(["cell", "optimizer"])
    assert math.isinf(scored.loc[("gpt2", "agd"), "epochs_to_target"])
    agd = scored.xs("agd", level="optimizer").iloc[0]
    assert agd["B"] == pytest.approx(0.5) and agd["B_low"] <= agd["B"] <= agd["B_high"]


def test_the_cluster_estimate_counts_the_test_split_of_a_run_table_row():
    from agd.plan import cluster

    table = lm_grid.runs(preset("quick"))
    row = table[table["test_split"].astype(bool)].iloc[0]  # a row as the workflow reads it: numpy's bool
    assert cluster.lm_training_seconds(row) > cluster.lm_training_seconds(row.to_dict() | {"test_split": False})


# --- the tuning stage on real GPT runs ---

TINY_GPT = {"text": "python_docs_char", "model": {"n_layer": 1, "n_head": 1, "n_embd": 16, "block_size": 16},
            "batch_size": 8, "max_iters": 6, "eval_interval": 3, "eval_iters": 2,
            "settings": {"adamw": {"warmup_iters": 1}}}


def test_a_gpt_study_is_judged_on_the_final_validation_loss_of_its_real_grid_runs(tmp_path):
    from agd.jobs.train_lm import main as train_lm
    from agd.tables.tuning import judge

    block = {"seeds": {"tuning": 0, "evaluation": [1]}, "tuning": {"rule": "final_val_acc", "bounds": [1e-6, 10.0]},
             "optimizers": {"agd": None, "adamw": [1e-3, 1e-1]},
             "cells": {"gpt": json.loads(json.dumps(TINY_GPT))}}
    (study,) = peers.studies({"peers": block})
    runs_dir = tmp_path / "lm_runs"
    for lr in study.rates:
        run = study.grid_run(block, lr)
        assert run.test_split and run.warmup_iters == 1
        argv = [*run.argv(), "--device", "cpu", "--threads", "1", "--data-dir", str(tmp_path / "data"),
                "--out", str(runs_dir / run.run_id())]
        assert train_lm(argv) == 0
        metrics = pd.read_csv(runs_dir / run.run_id() / "metrics.csv")
        assert {"val_loss", "test_loss"} <= set(metrics.columns)
    found = judge(study, block, list(study.rates), runs_dir, 0)
    final = {lr: pd.read_csv(runs_dir / study.grid_run(block, lr).run_id() / "metrics.csv")["val_loss"].iloc[-1]
             for lr in study.rates}
    assert found["rule"] == "final_val_loss" and found["split"] == "validation"
    assert {float(lr): -score for lr, score in found["scores"].items()} == pytest.approx(final)
    best = min(final, key=final.get)
    # The best at an edge of the two-rate grid extends it a decade that way, within the bounds.
    assert found["chosen"] is None and found["extend"] == pytest.approx(best * (10 if best == 1e-1 else 0.1))


def test_the_peers_tables_read_image_and_gpt_runs_side_by_side(tmp_path):
    """Real runs of an image cell and a GPT cell through peers_table and scores: a GPT run's rows carry its peak
    rate (not the per-row scheduled one), end in a final row, and score on the validation loss."""
    from agd.jobs.train import main as train
    from agd.jobs.train_lm import main as train_lm
    from agd.plan.table import member
    from agd.tables.peers import peers_table

    image_cell = {"arch": "fcn", "dataset": "mnist5k", "depth": 2, "width": 8, "batch_size": 500, "epochs": 1,
                  "val_size": 500}
    execution = ["--device", "cpu", "--threads", "1", "--data-dir", str(tmp_path / "data")]
    members = []
    for cell_name, cell, optimizers in (("fcn", image_cell, ("agd", "adam")),
                                        ("gpt", json.loads(json.dumps(TINY_GPT)), ("agd", "adamw"))):
        for optimizer in optimizers:
            run = peers.cell_run(cell, optimizer, 1, **({"lr": 1e-2} if registry.get(optimizer).tuned else {}))
            lm = isinstance(run, LMRun)
            out = tmp_path / ("lm_runs" if lm else "runs") / run.run_id()
            assert (train_lm if lm else train)([*run.argv(), *execution, "--out", str(out)]) == 0
            members.append(member(run, figure=peers.FIGURE, panel=cell_name, gpus=1, enabled=True,
                                  role=peers.EVALUATION))
    table = peers_table(members, tmp_path / "runs", tmp_path / "lm_runs")
    gpt = table[table["panel"] == "gpt"]
    assert set(gpt.loc[gpt["optimizer"] == "adamw", "lr"]) == {1e-2}
    assert gpt["final"].sum() == 2 and set(gpt["job"]) == {registry.LM} and set(gpt["metric"]) == {"val_loss"}
    assert gpt.loc[gpt["final"], "epoch"].tolist() == [TINY_GPT["max_iters"]] * 2
    scored = scores(table).set_index(["cell", "optimizer"])
    best = gpt[gpt["optimizer"] == "adamw"]["val_loss"].min()
    assert scored.loc[("gpt", "agd"), "target"] == pytest.approx(best)
    assert scored.loc[("gpt", "adamw"), "lr"] == 1e-2 and scored.loc[("fcn", "adam"), "lr"] == 1e-2
    assert scored.loc[("fcn", "agd"), "metric"] == "val_acc" and scored.loc[("gpt", "agd"), "metric"] == "val_loss"
    assert math.isfinite(scored.loc[("gpt", "agd"), "final_test_loss_mean"])
    assert scored.loc[("gpt", "agd"), "cells"] == 2 and scored.loc[("gpt", "adamw"), "cells"] == 1


def test_an_unfinished_gpt_run_is_said_to_stop_at_an_iteration():
    from agd.tables.selection import uncounted

    gpt = pd.Series(dict(epochs=200, epoch=40, status="running", text="python_docs_char"))
    image = pd.Series(dict(epochs=8, epoch=3, status="completed", text=math.nan))
    assert uncounted(gpt, "") == "in progress: iteration 40 of 200 so far"
    assert uncounted(image, "") == "ended at epoch 3 of the figure's 8"
