"""The peers' results as tables: every run of the peers block, each optimizer's scores on each cell with intervals
and with the cost of its tuning counted, its performance profiles (AlgoPerf style), the tuning studies, the init
ablation and the sensitivity study.

Every choice reads the validation split (agd.plan.peers): the studies chose their rates on it, and the cell's
target and the time to reach it are read on it too; test metrics are reported beside them and never choose.
An image cell's metric is validation accuracy and its time is in epochs; a GPT cell's metric is validation loss
(lower is better) and its time is in iterations (`metric`, `time_unit`; agd.tables.peer_rows).

Scores (results/peers_scores.csv), per cell and optimizer, over its runs on the evaluation seeds:
- final and best validation and test accuracy (a GPT cell: final validation and test loss), mean and standard
  deviation over the seeds;
- the cell's target: the median over the seeds of the reference optimizer's best validation metric (the tuned
  Adam; on a GPT cell nanoGPT's tuned AdamW: agd.plan.peers.JUDGING);
- time to target: the first epoch (iteration) whose validation metric reaches the target, the median over the
  seeds (a seed that never reaches it counts as infinite), with the fastest and slowest seed;
- ratio: time to target over the fastest optimizer's on that cell;
- the performance profile rho(tau), the share of cells on which an optimizer's ratio is at most tau, and its
  score B, the integral of rho over tau in [1, 4] divided by 3 (1: fastest on every cell; 0: never within 4x),
  with a 95% bootstrap interval (B_low, B_high) from resampling each cell's seeds. An optimizer is scored over
  the cells it trains (agd.plan.peers.applies; `cells` says how many);
- tuning-inclusive: a tuned optimizer's time to target counts every epoch of its study (the grid, every
  extension) before its evaluation run's; an optimizer without a grid counts its single run. B_tuning_inclusive is
  B on those times: the comparison AGD's title asks for.
"""

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from agd.optim import registry
from agd.plan import peers as plan
from agd.plan.peers import ABLATION, EVALUATION, FIGURE, JUDGING, SENSITIVITY, TUNING
from agd.plan.tuning import split_of
from agd.tables.aggregate import PARAMS, figure_rows
from agd.tables.peer_rows import run_rows
from agd.tables.selection import describe_runs, epoch_rows, is_lm, mark_final

TAU_MAX = 4.0
TAUS = np.linspace(1.0, TAU_MAX, 301)
BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0
PLAIN, TUNING_INCLUSIVE = "plain", "tuning_inclusive"
SCORE_COLUMNS = [
    "cell", "optimizer", "family", "dataset", "arch", "epochs", "seeds", "seeds_planned", "reason",
    "final_val_acc_mean", "final_test_acc_mean", "final_test_acc_std", "best_val_acc_mean", "best_test_acc_mean",
    "best_test_acc_std", "final_val_loss_mean", "final_test_loss_mean", "final_test_loss_std", "metric", "time_unit",
    "target", "epochs_to_target", "epochs_to_target_min", "epochs_to_target_max", "reached",
    "ratio", "cells", "B", "B_low", "B_high", "lr", "tuning_runs", "tuning_epochs", "tuning_seconds",
    "epochs_to_target_tuning_inclusive", "ratio_tuning_inclusive", "B_tuning_inclusive", "B_tuning_inclusive_low",
    "B_tuning_inclusive_high",
]


# --- the rows ---

def peers_table(members: Iterable[Mapping], runs_dir: Path, lm_runs_dir: Path | None = None) -> pd.DataFrame:
    """Every metric row of the peers block's runs (figure `peers`: roles evaluation, tuning and ablation; a GPT
    cell's under `lm_runs_dir`), with the run's parameters, role, status, why it is absent, its final row marked,
    and its cell's job, metric and target."""
    members = [dict(member) for member in members if member["figure"] == FIGURE]
    for member in members:
        for key in PARAMS:
            member.setdefault(key, None)
    members = list({(member["panel"], member["run"]): member for member in members}.values())
    rows = run_rows(members, Path(runs_dir), lm_runs_dir)
    roles = {(member["panel"], member["run"]): member["role"] for member in members}
    rows["role"] = [roles[panel, run] for panel, run in zip(rows["panel"], rows["run"])]
    jobs = {member["panel"]: registry.LM if is_lm(member) else registry.IMAGE for member in members}
    rows["job"] = rows["panel"].map(jobs)
    rows["metric"] = rows["job"].map(lambda job: JUDGING[job].metric)
    targets = {cell: target_of(cell_rows) for cell, cell_rows in rows.groupby("panel", sort=False)}
    return rows.assign(target=rows["panel"].map(targets))


def evaluation_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    return epoch_rows(rows[rows["role"] == EVALUATION])


def job_of(cell_rows: pd.DataFrame) -> str:
    return cell_rows["job"].iloc[0] if "job" in cell_rows and not cell_rows.empty else registry.IMAGE


def target_of(cell_rows: pd.DataFrame) -> float:
    """The median over the evaluation seeds of the reference optimizer's best validation metric (NaN without it)."""
    judging = JUDGING[job_of(cell_rows)]
    metric, sign = judging.metric, judging.sign
    reference = evaluation_epochs(cell_rows[cell_rows["optimizer"] == judging.reference])
    if reference.empty or metric not in reference:
        return math.nan
    best = (sign * pd.to_numeric(reference[metric], errors="coerce")).groupby(reference["run"]).max().dropna()
    return sign * float(best.median()) if not best.empty else math.nan


# --- time to target ---

def reaching_time(epochs: np.ndarray, values: np.ndarray, target: float) -> float:
    """The first epoch whose value reaches `target`; inf if none does (or there is no target)."""
    if math.isnan(target):
        return math.inf
    reached = np.flatnonzero(np.nan_to_num(values, nan=-np.inf) >= target)
    return float(epochs[reached[0]]) if reached.size else math.inf


def time_to_target(rows: pd.DataFrame, target: float, metric: str = "val_acc",
                   sign: float = 1.0) -> tuple[float, float]:
    """(epochs, seconds) until the run's `metric` first reaches `target` (from below where `sign` is 1, from
    above where it is -1: a loss); (inf, inf) if it never does."""
    ordered = rows.sort_values("epoch")
    values = sign * pd.to_numeric(ordered[metric], errors="coerce").to_numpy(float)
    epoch = reaching_time(ordered["epoch"].to_numpy(float), values, sign * target)
    if math.isinf(epoch):
        return math.inf, math.inf
    return epoch, float(ordered.loc[ordered["epoch"] == epoch, "time_s"].iloc[0])


def ratio(time: float, best: float) -> float:
    if math.isinf(time):
        return math.inf
    return 1.0 if time == best else time / best if best > 0 else math.inf


def ratios(times: Mapping[str, float]) -> dict[str, float]:
    """Each optimizer's time over the fastest's on one cell."""
    finite = [t for t in times.values() if math.isfinite(t)]
    best = min(finite) if finite else math.inf
    return {name: ratio(t, best) for name, t in times.items()}


def profile_score(values: Iterable[float]) -> float:
    """B = (1/3) * integral over tau in [1, 4] of the share of cells with ratio <= tau, exactly: a cell with
    ratio r adds (4 - max(r, 1)) / 3 when r < 4."""
    values = list(values)
    return float(np.mean([max(0.0, TAU_MAX - max(r, 1.0)) / (TAU_MAX - 1) for r in values])) if values else math.nan


# --- per-run curves, for the scores and their bootstrap ---

class Cell:
    """One cell's evaluation runs as arrays: per optimizer, per seed, the epochs (iterations) and the validation
    metric times its sign (higher is better), and what its tuning cost (epochs of every grid run)."""

    def __init__(self, name: str, rows: pd.DataFrame, tuning_epochs: Mapping[str, float], job: str = registry.IMAGE,
                 optimizers: Iterable[str] = ()):
        """`optimizers`: every optimizer planned on the cell, those without a row (every run absent or failed)
        included, so that it counts as never reaching the target in every bootstrap replicate, as in B."""
        self.name, self.job = name, job
        judging = JUDGING[job]
        metric, sign = judging.metric, judging.sign
        self.seeds = sorted(int(s) for s in rows["seed"].dropna().unique())
        self.curves: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {name: {} for name in optimizers}
        for (optimizer, seed), run in rows.groupby(["optimizer", "seed"], sort=False):
            ordered = run.sort_values("epoch")
            self.curves.setdefault(optimizer, {})[int(seed)] = (
                ordered["epoch"].to_numpy(float), sign * pd.to_numeric(ordered[metric], errors="coerce").to_numpy(float))
        self.tuning_epochs = dict(tuning_epochs)

    def target(self, seeds: list[int]) -> float:
        """The reference optimizer's median best (signed) validation metric over `seeds`."""
        reference = self.curves.get(JUDGING[self.job].reference, {})
        best = [np.nanmax(reference[s][1]) for s in seeds if s in reference and np.isfinite(reference[s][1]).any()]
        return float(np.median(best)) if best else math.nan

    def times(self, seeds: list[int], tuning_inclusive: bool) -> dict[str, float]:
        """Each optimizer's median time to the target set by these seeds' Adam runs, over these seeds."""
        target = self.target(seeds)
        result = {}
        for optimizer, runs in self.curves.items():
            per_seed = [reaching_time(*runs[s], target) for s in seeds if s in runs]
            time = float(np.median(per_seed)) if per_seed else math.inf
            if tuning_inclusive:
                time += self.tuning_epochs.get(optimizer, 0.0)
            result[optimizer] = time
        return result


def profile_scores(cells: list[Cell], choose_seeds, tuning_inclusive: bool) -> dict[str, float]:
    """B of every optimizer over the cells, each cell's seeds as `choose_seeds(cell)` picks them."""
    per_optimizer: dict[str, list[float]] = {}
    for cell in cells:
        for optimizer, r in ratios(cell.times(choose_seeds(cell), tuning_inclusive)).items():
            per_optimizer.setdefault(optimizer, []).append(r)
    return {optimizer: profile_score(values) for optimizer, values in per_optimizer.items()}


def bootstrap_interval(cells: list[Cell], tuning_inclusive: bool, replicates: int = BOOTSTRAP_REPLICATES,
                       seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> dict[str, tuple[float, float]]:
    """A percentile interval of every optimizer's B: each replicate draws every cell's evaluation seeds with
    replacement (the same draw for every optimizer of the cell: seed k is one data order and init stream) and
    recomputes the targets, times, ratios and B."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(replicates):
        picked = {cell.name: list(rng.choice(cell.seeds, size=len(cell.seeds), replace=True)) if cell.seeds else []
                  for cell in cells}
        for optimizer, b in profile_scores(cells, lambda cell: picked[cell.name], tuning_inclusive).items():
            draws.setdefault(optimizer, []).append(b)
    tail = 100 * (1 - level) / 2
    return {optimizer: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            for optimizer, values in draws.items()}


# --- the score table ---

SCORED_METRICS = ("val_acc", "test_acc", "val_loss", "test_loss")


def with_metrics(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with every metric a score reads, empty where a job does not log it (a GPT's accuracies)."""
    return rows.assign(**{name: pd.to_numeric(rows[name], errors="coerce") if name in rows else math.nan
                          for name in SCORED_METRICS})

def study_costs(table: pd.DataFrame) -> dict[tuple[str, str], dict]:
    """Per (cell, tuned optimizer): its study's runs, epochs (each grid run up to the cell's epochs, or as far as
    it got) and seconds, every round counted."""
    costs = {}
    grid = epoch_rows(table[table["role"] == TUNING])
    for (cell, optimizer), runs in grid.groupby(["panel", "optimizer"], sort=False):
        runs = runs[runs["epoch"] <= runs["epochs"]]
        last = runs.sort_values("epoch").groupby("run").tail(1)
        costs[cell, optimizer] = dict(tuning_runs=int(last["run"].nunique()), tuning_epochs=float(last["epoch"].sum()),
                                      tuning_seconds=float(last["time_s"].sum()))
    return costs


def scores(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and optimizer (see the module docstring)."""
    evaluation = table[table["role"] == EVALUATION]
    if evaluation.empty:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    costs = study_costs(table)
    cells, rows = [], []
    for cell_name, cell_rows in evaluation.groupby("panel", sort=False):
        epochs = epoch_rows(cell_rows)
        tuning = {optimizer: cost["tuning_epochs"] for (c, optimizer), cost in costs.items() if c == cell_name}
        job = job_of(cell_rows)
        judging = JUDGING[job]
        cell = Cell(cell_name, epochs, tuning, job, cell_rows["optimizer"].unique())
        cells.append(cell)
        target = cell.target(cell.seeds)
        for optimizer, mine in cell_rows.groupby("optimizer", sort=False):
            runs = with_metrics(epochs[epochs["optimizer"] == optimizer])
            finals = runs[runs["final"].astype(bool)]
            per_seed = [reaching_time(*cell.curves[optimizer][s], target) for s in cell.curves.get(optimizer, {})]
            best = runs.groupby("run")[["val_acc", "test_acc"]].max() if not runs.empty else pd.DataFrame(
                columns=["val_acc", "test_acc"])
            absent = sorted(set(mine.loc[mine["reason"].astype(str) != "", "reason"].astype(str)))
            row = dict(cell=cell_name, optimizer=optimizer, family=registry.family_of(optimizer),
                       dataset=mine["text"].iloc[0] if job == registry.LM else mine["dataset"].iloc[0],
                       arch="gpt" if job == registry.LM else mine["arch"].iloc[0], epochs=int(mine["epochs"].max()),
                       seeds=int(runs["run"].nunique()), seeds_planned=int(mine["run"].nunique()),
                       reason="; ".join(absent),
                       final_val_acc_mean=finals["val_acc"].mean(), final_test_acc_mean=finals["test_acc"].mean(),
                       final_test_acc_std=finals["test_acc"].std(), best_val_acc_mean=best["val_acc"].mean(),
                       best_test_acc_mean=best["test_acc"].mean(), best_test_acc_std=best["test_acc"].std(),
                       final_val_loss_mean=finals["val_loss"].mean(), final_test_loss_mean=finals["test_loss"].mean(),
                       final_test_loss_std=finals["test_loss"].std(), metric=judging.metric, time_unit=judging.time_unit,
                       target=judging.sign * target,
                       epochs_to_target=float(np.median(per_seed)) if per_seed else math.inf,
                       epochs_to_target_min=min(per_seed, default=math.inf),
                       epochs_to_target_max=max(per_seed, default=math.inf),
                       reached=sum(math.isfinite(t) for t in per_seed))
            cost = costs.get((cell_name, optimizer), dict(tuning_runs=0, tuning_epochs=0.0, tuning_seconds=0.0))
            chosen = mine["lr"].dropna() if registry.get(optimizer).tuned else pd.Series(dtype=float)
            row |= cost | dict(lr=float(chosen.iloc[0]) if not chosen.empty else math.nan)
            row["epochs_to_target_tuning_inclusive"] = row["epochs_to_target"] + cost["tuning_epochs"]
            rows.append(row)
    result = pd.DataFrame(rows)
    for kind, time, ratio_column, score in ((PLAIN, "epochs_to_target", "ratio", "B"),
                                            (TUNING_INCLUSIVE, "epochs_to_target_tuning_inclusive",
                                             "ratio_tuning_inclusive", "B_tuning_inclusive")):
        result[ratio_column] = [ratios(dict(zip(group["optimizer"], group[time])))[optimizer]
                                for cell, group in result.groupby("cell", sort=False)
                                for optimizer in group["optimizer"]]
        result[score] = result["optimizer"].map(result.groupby("optimizer")[ratio_column].apply(profile_score))
        result["cells"] = result["optimizer"].map(result.groupby("optimizer")["cell"].nunique())
        interval = bootstrap_interval(cells, kind == TUNING_INCLUSIVE)
        result[f"{score}_low"] = result["optimizer"].map(lambda o: interval.get(o, (math.nan, math.nan))[0])
        result[f"{score}_high"] = result["optimizer"].map(lambda o: interval.get(o, (math.nan, math.nan))[1])
    return result[SCORE_COLUMNS]


def profiles(scored: pd.DataFrame) -> pd.DataFrame:
    """rho(tau) of every optimizer over the cells, on TAUS, plain and tuning-inclusive: the figure's curves."""
    rows = []
    for kind, ratio_column, score in ((PLAIN, "ratio", "B"), (TUNING_INCLUSIVE, "ratio_tuning_inclusive",
                                                                "B_tuning_inclusive")):
        for optimizer, mine in scored.groupby("optimizer", sort=False):
            values = mine[ratio_column].to_numpy(float)
            rows += [dict(kind=kind, optimizer=optimizer, family=mine["family"].iloc[0], tau=tau,
                          rho=float(np.mean(values <= tau)), B=mine[score].iloc[0], B_low=mine[f"{score}_low"].iloc[0],
                          B_high=mine[f"{score}_high"].iloc[0], cells=len(values)) for tau in TAUS]
    return pd.DataFrame(rows, columns=["kind", "optimizer", "family", "tau", "rho", "B", "B_low", "B_high", "cells"])


# --- the tuning studies ---

TUNING_COLUMNS = ["optimizer", "cell", "lr", "split", "score", "chosen", "extended", "round", "rule", "reason",
                  "study"]


def last_rounds(decisions: Iterable[Mapping]) -> dict[str, Mapping]:
    """{study: its last round's decision}: the one that chose, once the study is done."""
    last: dict[str, Mapping] = {}
    for decision in decisions:
        if decision["study"] not in last or decision["round"] > last[decision["study"]]["round"]:
            last[decision["study"]] = decision
    return last


def tuning_table(decisions: Iterable[Mapping]) -> pd.DataFrame:
    """Every rate every study tried, with its score on the split the rule reads, whether it was chosen and
    whether it came from an extension of the initial grid (results/peers_tuning.csv): one row per rate, from the
    study's last round."""
    rows = []
    for decision in last_rounds(decisions).values():
        initial = {float(lr) for lr in decision["initial"]}
        for lr, score in sorted((float(lr), score) for lr, score in decision["scores"].items()):
            rows.append(dict(optimizer=decision["optimizer"], cell=decision["cell"], lr=lr,
                             split=split_of(decision["rule"]), score=math.nan if score is None else score,
                             chosen=decision["chosen"] is not None and math.isclose(lr, decision["chosen"]),
                             extended=lr not in initial, round=decision["round"], rule=decision["rule"],
                             reason=decision["reason"], study=decision["study"]))
    return pd.DataFrame(rows, columns=TUNING_COLUMNS)


def read_decisions(paths: Iterable[str | Path]) -> list[dict]:
    return [json.loads(Path(path).read_text()) for path in paths]


def all_members(preset: Mapping, members: Iterable[Mapping], decisions: Iterable[Mapping],
                smoke: bool = False) -> list[dict]:
    """The block's membership rows: those known before any study decides, and those each study's last decision
    adds (its whole grid, its chosen rate's runs)."""
    studies = {study.name: study for study in plan.studies(preset, smoke=smoke)}
    rows = [dict(m) for m in members]
    for name, decision in last_rounds(decisions).items():
        if name not in studies:
            raise ValueError(f"{name}: a decision of no study of this config; delete results/tuning/{name}")
        rows += plan.decided_members(preset, studies[name], decision["rates"], decision["chosen"])
    return rows


# --- the init ablation ---

INIT_COLUMNS = ["cell", "optimizer", "family", "init", "own_init", "seed", "lr", "final_val_acc", "final_test_acc",
                "best_val_acc", "status", "reason", "run"]


def init_table(table: pd.DataFrame) -> pd.DataFrame:
    """results/peers_init.csv: on the ablation's cells, every optimizer's final accuracies per seed from its own
    init (its evaluation runs) and from the other (its ablation runs)."""
    ablated = set(table.loc[table["role"] == ABLATION, "panel"])
    rows = table[table["panel"].isin(ablated) & table["role"].isin([EVALUATION, ABLATION])]
    result = []
    for run, mine in rows.groupby("run", sort=False):
        first = mine.iloc[0]
        entry = registry.get(first["optimizer"])
        init = entry.init if first["role"] == EVALUATION else (
            registry.PYTORCH_DEFAULT if entry.init == registry.ORTHOGONAL else registry.ORTHOGONAL)
        final = mine[mine["final"].astype(bool)]
        epochs = epoch_rows(mine)
        result.append(dict(cell=first["panel"], optimizer=first["optimizer"], family=entry.family, init=init,
                           own_init=first["role"] == EVALUATION, seed=first["seed"], lr=first["lr"],
                           final_val_acc=final["val_acc"].iloc[0] if not final.empty else math.nan,
                           final_test_acc=final["test_acc"].iloc[0] if not final.empty else math.nan,
                           best_val_acc=epochs["val_acc"].max() if not epochs.empty else math.nan,
                           status=first["status"], reason=first["reason"], run=run))
    return pd.DataFrame(result, columns=INIT_COLUMNS)


# --- the sensitivity study ---

SENSITIVITY_COLUMNS = ["panel", "optimizer", "family", "knob", "value", "multiplier", "final_val_acc",
                       "final_test_acc", "final_train_loss", "status", "reason", "dataset", "epochs", "seed", "run"]


def sensitivity_table(members: Iterable[Mapping], runs_dir: Path) -> pd.DataFrame:
    """Final accuracies of every sensitivity run against its optimizer's knob, as a multiple of the default."""
    members = list({m["run"]: dict(m) for m in members if m["figure"] == SENSITIVITY}.values())
    if not members:
        return pd.DataFrame(columns=SENSITIVITY_COLUMNS)
    rows = mark_final(describe_runs(figure_rows(members, Path(runs_dir))))
    knobs = {m["run"]: m for m in members}
    result = []
    for run, mine in rows.groupby("run", sort=False):
        first = mine.iloc[0]
        entry = registry.get(first["optimizer"])
        value = knobs[run][entry.knob]
        final = mine[mine["final"].astype(bool)]
        result.append(dict(panel=first["panel"], optimizer=first["optimizer"], family=entry.family, knob=entry.knob,
                           value=value, multiplier=value / entry.defaults.get(entry.knob, 1.0),
                           final_val_acc=final["val_acc"].iloc[0] if not final.empty else math.nan,
                           final_test_acc=final["test_acc"].iloc[0] if not final.empty else math.nan,
                           final_train_loss=final["train_loss"].iloc[0] if not final.empty else math.nan,
                           status=first["status"], reason=first["reason"], dataset=first["dataset"],
                           epochs=first["epochs"], seed=first["seed"], run=run))
    return pd.DataFrame(result, columns=SENSITIVITY_COLUMNS)
