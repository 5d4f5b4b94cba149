"""The tuning stage of the peers block: which rates a study can reach, the jobs it asks for once it has decided, and
its judge on real runs, refusing grids that mix runs; then the Snakemake checkpoint extending a grid whose best
sits at an edge, end to end."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agd.jobs.train import main as train
from agd.plan import peers
from agd.plan.tuning import rates_of_round
from agd.tables.tuning import TuningError, judge

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
# One tiny cell: a depth-2 FCN on the bundled MNIST subset, one epoch, a 500-image validation split.
CELL = {"arch": "fcn", "dataset": "mnist5k", "depth": 2, "width": 8, "batch_size": 500, "epochs": 1, "val_size": 500}


def block(rates=(1e-3, 1e-2), bounds=(1e-6, 10.0), evaluation=(1, 2, 3)) -> dict:
    return {"seeds": {"tuning": 0, "evaluation": list(evaluation)}, "tuning": {"rule": "final_val_acc",
            "bounds": list(bounds)}, "optimizers": {"agd": None, "adam": list(rates)}, "cells": {"tiny": dict(CELL)}}


def study_of(peers_block: dict, smoke: bool = False) -> peers.Study:
    (study,) = peers.studies({"peers": peers_block}, smoke=smoke)
    return study


def test_a_study_reaches_every_decade_within_its_bounds_and_a_smoke_study_none():
    study = study_of(block(rates=(1e-3, 1e-2), bounds=(1e-5, 1.0)))
    assert peers.reachable_rates(study) == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert peers.reachable_rates(study_of(block(), smoke=True)) == [1e-3, 1e-2]
    jobs = peers.decided_jobs([study])
    kinds = sorted((kind, lr) for _, kind, lr in jobs.values())
    assert [lr for kind, lr in kinds if kind == peers.GRID] == pytest.approx([1e-5, 1e-4, 1e-1, 1.0])
    assert [lr for kind, lr in kinds if kind == peers.CHOSEN] == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    assert len(set(jobs)) == len(jobs) == 10


def test_a_decided_job_trains_the_grid_run_or_the_chosen_rate_on_every_evaluation_seed():
    peers_block = block()
    study = study_of(peers_block)
    (grid_run,) = peers.decided_runs(peers_block, study, peers.GRID, 0.1)
    assert (grid_run.lr, grid_run.seed, grid_run.val_size) == (0.1, 0, 500)
    chosen = peers.decided_runs(peers_block, study, peers.CHOSEN, 1e-2)
    assert [(run.lr, run.seed) for run in chosen] == [(1e-2, 1), (1e-2, 2), (1e-2, 3)]


def test_each_round_adds_the_extension_the_last_one_asked_for():
    earlier = [{"extend": 0.1}, {"extend": 1.0}]
    assert rates_of_round((1e-3, 1e-2), []) == [1e-3, 1e-2]
    assert rates_of_round((1e-3, 1e-2), earlier) == [1e-3, 1e-2, 0.1, 1.0]


def train_grid_run(runs: Path, peers_block: dict, lr: float, *extra: str) -> Path:
    run = study_of(peers_block).grid_run(peers_block, lr)
    out = runs / run.run_id()
    assert train([*run.argv(), "--device", "cpu", "--threads", "1", "--out", str(out), *extra]) == 0
    return out


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    """Both runs of the tiny grid, trained once for the tests that read (copies of) them."""
    runs = tmp_path_factory.mktemp("runs")
    for lr in (1e-3, 1e-2):
        train_grid_run(runs, block(), lr)
    return runs


@pytest.fixture
def runs(grid, tmp_path) -> Path:
    shutil.copytree(grid, tmp_path / "runs")
    return tmp_path / "runs"


def test_a_round_scores_every_rate_on_the_validation_split_and_decides(runs):
    peers_block = block()
    study = study_of(peers_block)
    found = judge(study, peers_block, [1e-3, 1e-2], runs, 0)
    for lr in (1e-3, 1e-2):
        metrics = pd.read_csv(runs / study.grid_run(peers_block, lr).run_id() / "metrics.csv")
        assert found["scores"][repr(lr)] == pytest.approx(metrics["val_acc"].iloc[-1])
    assert found["split"] == "validation" and found["round"] == 0
    best = max((1e-3, 1e-2), key=lambda lr: found["scores"][repr(lr)])
    assert found["extend"] == (1e-4 if best == 1e-3 else 0.1) and found["chosen"] is None  # a best at an edge


def test_a_run_that_is_not_the_planned_one_is_refused(runs):
    peers_block = block()
    study = study_of(peers_block)
    small, large = (runs / study.grid_run(peers_block, lr).run_id() for lr in (1e-3, 1e-2))
    shutil.rmtree(large)
    shutil.copytree(small, large)  # the 1e-3 run where the 1e-2 run should be: scores keyed by rate would collide
    with pytest.raises(TuningError, match=r"holds another run than the one planned \(lr=0.001 where the study plans "
                                          r"lr=0.01\)"):
        judge(study, peers_block, [1e-3, 1e-2], runs, 0)


def test_a_grid_on_mixed_data_is_refused_naming_both(runs):
    peers_block = block()
    study = study_of(peers_block)
    shutil.rmtree(runs / study.grid_run(peers_block, 1e-2).run_id())
    train_grid_run(runs, peers_block, 1e-2, "--synthetic-data")
    with pytest.raises(TuningError, match="trained on different data") as refused:
        judge(study, peers_block, [1e-3, 1e-2], runs, 0)
    assert "synthetic" in str(refused.value) and "lr1e-03" in str(refused.value)


def test_a_damaged_or_missing_grid_run_is_refused_and_partial_judges_what_ended(runs):
    peers_block = block()
    study = study_of(peers_block)
    out = runs / study.grid_run(peers_block, 1e-2).run_id()
    metrics = out / "metrics.csv"
    metrics.write_text(metrics.read_text().replace("0.", "0.9", 1))
    with pytest.raises(TuningError, match="differs from the one the run ended with"):
        judge(study, peers_block, [1e-3, 1e-2], runs, 0)
    shutil.rmtree(out)
    with pytest.raises(TuningError, match=r"grid run\(s\) not ended: .*lr1e-02.* \(missing\)"):
        judge(study, peers_block, [1e-3, 1e-2], runs, 0)
    partial = judge(study, peers_block, [1e-3, 1e-2], runs, 0, partial=True)
    assert partial["chosen"] == 1e-3 and partial["extend"] is None and partial["rates"] == [1e-3]


def tuning_config(workdir: Path) -> dict:
    """The quick preset's settings with a one-cell peers block whose study must extend once: its grid is the
    single rate 1e-6 (the best, at both edges) within bounds that allow one more decade, 1e-5."""
    config = yaml.safe_load(yaml.safe_dump(CONFIG))
    config["preset"] = "quick"
    quick = config["presets"]["quick"]
    quick["figures"] = {"fig4": quick["figures"]["fig4"]}
    quick["peers"] = block(rates=(1e-6,), bounds=(1e-6, 1e-5), evaluation=(1, 2))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


@pytest.mark.slow
def test_the_tuning_stage_extends_a_grid_whose_best_is_at_an_edge_then_evaluates_its_choice(tmp_path):
    tuning_config(tmp_path)
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                             "--cores", "2", "results/peers_tuning.csv"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (study,) = [path.name for path in (tmp_path / "results/tuning").iterdir()]
    first, second = (json.loads((tmp_path / f"results/tuning/{study}/round{k}.json").read_text()) for k in (0, 1))
    assert first["extend"] == 1e-5 and first["chosen"] is None and first["rates"] == [1e-6]
    assert second["extend"] is None and second["rates"] == [1e-6, 1e-5] and second["chosen"] in (1e-6, 1e-5)
    assert "bound" in second["reason"] or "inside" in second["reason"]
    assert not (tmp_path / f"results/tuning/{study}/round2.json").exists()
    tuning = pd.read_csv(tmp_path / "results/peers_tuning.csv")
    assert list(tuning.columns[:7]) == ["optimizer", "cell", "lr", "split", "score", "chosen", "extended"]
    assert sorted(tuning["lr"]) == [1e-6, 1e-5] and tuning["extended"].tolist() == [lr == 1e-5 for lr in tuning["lr"]]
    assert set(tuning["split"]) == {"validation"} and tuning["chosen"].sum() == 1
    assert tuning.loc[tuning["chosen"], "lr"].item() == second["chosen"]
    scores = pd.read_csv(tmp_path / "results/peers_scores.csv").set_index("optimizer")
    assert scores.loc["adam", "lr"] == second["chosen"] and scores.loc["adam", "seeds"] == 2
    assert scores.loc["adam", "tuning_runs"] == 2  # both rounds' grid runs count towards its cost
    chosen = [run for run in (tmp_path / "results/runs").rglob("run.json") if "seed0" not in str(run)
              and "/adam-" in str(run)]
    assert len(chosen) == 2  # the chosen rate on each evaluation seed, trained after the study decided
    assert "--tune" not in subprocess.run([sys.executable, "-m", "agd.jobs.bundle", "--help"], capture_output=True,
                                          text=True).stdout  # a training job never decides which runs exist
