"""The peers' results as tables: every run of the peers block, each optimizer's scores on each cell, its
performance profile (AlgoPerf style) and the sensitivity study.

Scores (results/peers_scores.csv), per cell and optimizer, over its runs on the evaluation seeds:
- final and best test accuracy, mean and standard deviation over the seeds;
- the cell's target: the median over the seeds of the tuned Adam's best test accuracy;
- time to target: the first epoch whose test accuracy reaches the target (and the wall-clock seconds by
  then), the median over the seeds, a seed that never reaches it counting as infinite;
- ratio: time to target in epochs over the best optimizer's on that cell (epochs, not seconds: runs share
  machines and processes, an epoch is an epoch);
- the performance profile rho(tau), the share of cells on which an optimizer's ratio is at most tau, and its
  score B, the integral of rho over tau in [1, 4] divided by 3 (1: best on every cell; 0: never within 4x);
- a tuned baseline's rate and the cost of its tuning grid (runs, epochs, seconds), which its time to
  target leaves out.
"""

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from agd import records
from agd.optim import registry
from agd.plan.peers import EVALUATION, SENSITIVITY, TUNING
from agd.plan.specs import ImageRun
from agd.tables.aggregate import PARAMS, figure_rows
from agd.tables.selection import describe_runs, epoch_rows, mark_final

TARGET_OPTIMIZER = "adam"
TAUS = np.linspace(1.0, 4.0, 301)
SCORE_COLUMNS = ["cell", "optimizer", "family", "dataset", "arch", "epochs", "seeds", "final_test_acc_mean",
                 "final_test_acc_std", "best_test_acc_mean", "best_test_acc_std", "target", "epochs_to_target",
                 "seconds_to_target", "reached", "ratio", "score", "lr", "tuning_runs", "tuning_epochs",
                 "tuning_seconds"]


def evaluation_members(evaluations: Iterable[Mapping], runs_dir: Path, bundles_dir: Path) -> list[dict]:
    """The runs a tuned-evaluation job trained (from its manifest), as membership rows of the peers figure; a
    job not yet run gives one row per seed with no run."""
    members = []
    for job in evaluations:
        manifest = Path(bundles_dir) / f"{job['name']}.json"
        if not manifest.exists():
            members += [dict(figure="peers", panel=job["cell"], run=f"{job['name']}/seed{seed}", enabled=True,
                             panel_epochs=job["epochs"], role=EVALUATION, family=registry.family_of(job["optimizer"]),
                             optimizer=job["optimizer"], seed=seed, dataset=job["dataset"], arch=job["arch"])
                        for seed in job["seeds"]]
            continue
        for entry in json.loads(manifest.read_text())["runs"]:
            run_id = Path(entry["out"]).relative_to(runs_dir).as_posix()
            run = _run(Path(runs_dir) / run_id)
            settings = vars_of(run) if run else dict(  # a record that cannot be read: its table row says why
                optimizer=job["optimizer"], dataset=job["dataset"], arch=job["arch"],
                seed=int(Path(run_id).name.removeprefix("seed")) if Path(run_id).name[4:].isdigit() else None)
            members.append(dict(figure="peers", panel=job["cell"], run=run_id, enabled=True,
                                panel_epochs=job["epochs"], role=EVALUATION,
                                family=registry.family_of(settings["optimizer"]), **settings))
    return members


def _run(run_dir: Path) -> ImageRun | None:
    """The run a directory's record names, None if its record cannot be read."""
    try:
        record = records.read_json(run_dir / records.RUN_RECORD)
        return ImageRun.from_args(argparse.Namespace(**record["args"]))
    except (records.RecordProblem, TypeError, KeyError, ValueError, AttributeError):
        return None


def vars_of(run: ImageRun) -> dict:
    return {f.name: getattr(run, f.name) for f in run.fields()}


def peers_table(members: Iterable[Mapping], evaluations: Iterable[Mapping], runs_dir: Path,
                bundles_dir: Path) -> pd.DataFrame:
    """Every metric row of the peers block's runs (figure `peers`: roles evaluation and tuning), with the
    run's parameters, role, status, why it is absent, its final epoch row marked, and its cell's target."""
    members = [dict(member) for member in members if member["figure"] == "peers"]
    members += evaluation_members(evaluations, Path(runs_dir), Path(bundles_dir))
    for member in members:
        for key in PARAMS:
            member.setdefault(key, None)
    rows = figure_rows(members, Path(runs_dir))
    roles = {(member["panel"], member["run"]): member["role"] for member in members}
    rows["role"] = [roles[panel, run] for panel, run in zip(rows["panel"], rows["run"])]
    rows = mark_final(describe_runs(rows))
    targets = {cell: target_of(cell_rows) for cell, cell_rows in rows.groupby("panel", sort=False)}
    return rows.assign(target=rows["panel"].map(targets))


def target_of(cell_rows: pd.DataFrame) -> float:
    """The median over the evaluation seeds of the tuned Adam's best test accuracy (NaN without it)."""
    adam = epoch_rows(cell_rows[(cell_rows["optimizer"] == TARGET_OPTIMIZER) & (cell_rows["role"] == EVALUATION)])
    if adam.empty:
        return math.nan
    best = adam.groupby("run")["test_acc"].max()
    return float(best.median()) if not best.empty else math.nan


def time_to_target(run_rows: pd.DataFrame, target: float) -> tuple[float, float]:
    """(epochs, seconds) until the run's test accuracy first reaches `target`; (inf, inf) if it never does."""
    reached = run_rows[run_rows["test_acc"] >= target].sort_values("epoch") if not math.isnan(target) else run_rows[:0]
    if reached.empty:
        return math.inf, math.inf
    first = reached.iloc[0]
    return float(first["epoch"]), float(first["time_s"])


def ratio(time: float, best: float) -> float:
    if math.isinf(time):
        return math.inf
    return 1.0 if time == best else time / best if best > 0 else math.inf


def profile_score(ratios: Iterable[float]) -> float:
    """B = (1/3) * integral over tau in [1, 4] of the share of cells with ratio <= tau, exactly: a cell with
    ratio r adds (4 - max(r, 1)) / 3 when r < 4."""
    ratios = list(ratios)
    return float(np.mean([max(0.0, 4.0 - max(r, 1.0)) / 3.0 for r in ratios])) if ratios else math.nan


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and optimizer (see the module docstring)."""
    rows = []
    evaluation = table[table["role"] == EVALUATION]
    for cell, cell_rows in evaluation.groupby("panel", sort=False):
        target = target_of(cell_rows)
        epochs = epoch_rows(cell_rows)
        for optimizer, mine in cell_rows.groupby("optimizer", sort=False):
            runs = epochs[epochs["optimizer"] == optimizer]
            finals = runs[runs["final"].astype(bool)]
            per_seed = [time_to_target(run, target) for _, run in runs.groupby("run")]
            row = dict(cell=cell, optimizer=optimizer, family=registry.family_of(optimizer),
                       dataset=mine["dataset"].iloc[0], arch=mine["arch"].iloc[0], epochs=int(mine["epochs"].max()),
                       seeds=int(runs["run"].nunique()),
                       final_test_acc_mean=finals["test_acc"].mean(), final_test_acc_std=finals["test_acc"].std(),
                       best_test_acc_mean=runs.groupby("run")["test_acc"].max().mean(),
                       best_test_acc_std=runs.groupby("run")["test_acc"].max().std(), target=target,
                       epochs_to_target=float(np.median([e for e, _ in per_seed])) if per_seed else math.inf,
                       seconds_to_target=float(np.median([s for _, s in per_seed])) if per_seed else math.inf,
                       reached=sum(math.isfinite(e) for e, _ in per_seed))
            row |= tuning_cost(table[(table["panel"] == cell) & (table["optimizer"] == optimizer)], row["epochs"])
            rows.append(row)
    result = pd.DataFrame(rows, columns=[c for c in SCORE_COLUMNS if c not in ("ratio", "score")])
    if result.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    best = result.groupby("cell")["epochs_to_target"].transform("min")
    result["ratio"] = [ratio(t, b) for t, b in zip(result["epochs_to_target"], best)]
    result["score"] = result["optimizer"].map(result.groupby("optimizer")["ratio"].apply(profile_score))
    return result[SCORE_COLUMNS]


def tuning_cost(rows: pd.DataFrame, epochs: int) -> dict:
    """A tuned baseline's chosen rate (its evaluation runs') and its grid's runs, epochs and seconds."""
    if not registry.get(rows["optimizer"].iloc[0]).tuned:
        return dict(lr=math.nan, tuning_runs=0, tuning_epochs=0, tuning_seconds=0.0)
    chosen = rows[rows["role"] == EVALUATION]["lr"].dropna()
    grid = epoch_rows(rows[rows["role"] == TUNING])
    grid = grid[grid["epoch"] <= epochs]
    last = grid.sort_values("epoch").groupby("run").tail(1)
    return dict(lr=float(chosen.iloc[0]) if not chosen.empty else math.nan, tuning_runs=int(last["run"].nunique()),
                tuning_epochs=int(last["epoch"].sum()), tuning_seconds=float(last["time_s"].sum()))


def profiles(table: pd.DataFrame) -> pd.DataFrame:
    """rho(tau) of every optimizer over the cells, on TAUS: the figure's curves."""
    rows = []
    for optimizer, mine in table.groupby("optimizer", sort=False):
        ratios = mine["ratio"].to_numpy(float)
        rows += [dict(optimizer=optimizer, family=mine["family"].iloc[0], tau=tau, rho=float(np.mean(ratios <= tau)),
                      score=mine["score"].iloc[0], cells=len(ratios)) for tau in TAUS]
    return pd.DataFrame(rows, columns=["optimizer", "family", "tau", "rho", "score", "cells"])


def sensitivity_table(members: Iterable[Mapping], runs_dir: Path) -> pd.DataFrame:
    """Final test accuracy of every sensitivity run against its optimizer's knob, as a multiple of the default."""
    members = [dict(member) for member in members if member["figure"] == SENSITIVITY]
    columns = ["panel", "optimizer", "family", "knob", "value", "multiplier", "final_test_acc", "final_train_loss",
               "status", "reason", "dataset", "epochs", "seed", "run"]
    if not members:
        return pd.DataFrame(columns=columns)
    rows = mark_final(describe_runs(figure_rows(members, Path(runs_dir))))
    result = []
    for run, mine in rows.groupby("run", sort=False):
        first = mine.iloc[0]
        entry = registry.get(first["optimizer"])
        member = next(m for m in members if m["run"] == run)
        value = member[entry.knob]
        final = mine[mine["final"].astype(bool)]
        result.append(dict(panel=first["panel"], optimizer=first["optimizer"], family=entry.family, knob=entry.knob,
                           value=value, multiplier=value / entry.defaults.get(entry.knob, 1.0),
                           final_test_acc=final["test_acc"].iloc[0] if not final.empty else math.nan,
                           final_train_loss=final["train_loss"].iloc[0] if not final.empty else math.nan,
                           status=first["status"], reason=first["reason"], dataset=first["dataset"],
                           epochs=first["epochs"], seed=first["seed"], run=run))
    return pd.DataFrame(result, columns=columns)
