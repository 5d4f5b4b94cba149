"""Which rows each panel shows, decided once: the tuned rate of every baseline grid, the final row of every run,
and why a run is absent. Written as columns of the figure tables, which figures and numbers read.

Columns added to a figure table:
- `family`: the optimizer's family in the registry (agd, tuned, lr-free);
- `rates`: how many learning rates the optimizer has in the run's setting (panel and every key setting but lr);
- `selected`: the run stands for its optimizer in its setting: every run of an optimizer without a rate grid,
  and the run at the tuned rate of a grid (or at its only rate);
- `final`: the last epoch row within the figure's epochs of a run that counts: one that ended (completed, or
  diverged: a result too) at the figure's length or beyond, with finite metrics in that row. A run in progress
  is never final;
- `reason`: why a row or run cannot count, empty when it counts: missing, disabled in config.yaml, damaged
  (what in its files disagrees), in progress, ended short of the figure's epochs, or a metric that is not a
  finite number.

`seed_count` says how many of the runs planned for an optimizer in a setting count, and why the others do not
(claims and captions: "2 of 3 seeds").
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from agd.optim import registry
from agd.plan.specs import ImageRun
from agd.plan.tuning import best_rate, check_rule, tuning_score
from agd.records import DAMAGED

ABSENT = ("missing", "not_run", DAMAGED)  # runs with no rows to show
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
# A baseline's setting: its panel and every key setting but the rate it is tuned over.
SETTING = ["panel", *(c for c in ImageRun.columns() if c != "lr")]
# Datasets and texts that a config switch turns on, as users know them.
GATED = {"imagenet": "ImageNet", "openwebtext": "openwebtext"}


def ran(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs that exist (completed, diverged or still running)."""
    return rows[~rows["status"].isin(ABSENT)]


def epoch_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch rows of the runs that exist (none when no run has metrics yet)."""
    rows = ran(rows)
    return rows[rows["kind"] == "epoch"] if "kind" in rows else rows.iloc[:0]


def tuned_family(rows: pd.DataFrame) -> pd.Series:
    return rows["optimizer"].map(lambda name: registry.get(name).tuned)


def setting_columns(*tables: pd.DataFrame) -> list[str]:
    """The SETTING columns that every table has (hand-made tables may leave some out)."""
    return [c for c in SETTING if all(c in table.columns for table in tables)]


def select_tuned(figure: pd.DataFrame, rule: str) -> pd.DataFrame:
    """For each optimizer that takes a learning rate and each setting of a figure, the rate its grid's best run used."""
    check_rule(rule)
    setting = setting_columns(figure)
    baselines = figure[tuned_family(figure)] if not figure.empty else figure
    rows = []
    for values, group in baselines.groupby(setting, dropna=False):
        scores = {lr: tuning_score(rows_of_lr, rule) for lr, rows_of_lr in group.groupby("lr")}
        best_lr = best_rate(scores)
        rows.append({"figure": group["figure"].iloc[0], **dict(zip(setting, values)), "lr": best_lr,
                     "rule": rule, "score": scores[best_lr], "candidates": len(scores)})
    return pd.DataFrame(rows, columns=["figure", *setting, "lr", "rule", "score", "candidates"])


def setting_key(values) -> tuple:
    """A setting as a hashable key in which NaN, NA and None are equal, and 8 equals 8.0."""
    key = []
    for value in values:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            key.append(None)
        elif isinstance(value, (bool, np.bool_, str)):
            key.append(value)
        else:
            key.append(float(value))
    return tuple(key)


def absence_reason(status: str, gate: str | None) -> str:
    if status == "missing":
        return "missing"
    if status == "not_run":
        if gate in GATED:
            return f"{GATED[gate]} is off (set {gate}.enabled: true in config.yaml)"
        return "disabled in config.yaml"
    return ""


def describe_runs(rows: pd.DataFrame, gate: str = "dataset") -> pd.DataFrame:
    """Any run table with each row's optimizer family and, for absent runs, why (`gate` names the column that
    a config switch can turn off: dataset or text); a reason the table already gives (a damaged run's) is kept."""
    rows = rows.copy()
    if rows.empty:
        return rows.assign(family=[], reason=[])
    rows["family"] = rows["optimizer"].map(registry.family_of)
    given = rows["reason"] if "reason" in rows else pd.Series("", index=rows.index)
    rows["reason"] = [absence_reason(status, g) or (r if isinstance(r, str) else "")
                      for status, g, r in zip(rows["status"], rows[gate], given)]
    return rows


def not_finite(rows: pd.DataFrame) -> pd.Series:
    """Per row, its metrics that are not finite numbers, as text (empty when all are)."""
    present = [c for c in METRICS if c in rows]
    values = rows[present].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(values.to_numpy(dtype=float)) if present else np.zeros((len(rows), 0), bool)
    return pd.Series([", ".join(f"{c} is {v}" for c, v, b in zip(present, row, flags) if b)
                      for row, flags in zip(values.itertuples(index=False), bad)], index=rows.index)


def is_lm(row: Mapping) -> bool:
    """A membership or metric row of a language-model run (it names a text)."""
    return isinstance(row.get("text"), str)


def uncounted(last: pd.Series, problems: str) -> str:
    """Why a run whose last epoch row within the figure is `last` does not count, or "" if it does."""
    planned, epoch = last.get("epochs"), int(last["epoch"])
    unit = "iteration" if is_lm(last) else "epoch"  # a GPT's rows are its iterations
    short = planned is not None and not pd.isna(planned) and epoch < planned
    if last["status"] == "running":
        return f"in progress: {unit} {epoch}" + (f" of {int(planned)}" if short else "") + " so far"
    if last["status"] == "completed" and short:
        return f"ended at {unit} {epoch} of the figure's {int(planned)}"
    if last["status"] == "completed" and problems:
        return f"its last epoch's {problems}: not a number to compare"
    return ""


def mark_final(rows: pd.DataFrame) -> pd.DataFrame:
    """The table with `final` marking the last epoch row of each run that counts, and `reason` saying why each
    row or run that does not count does not (see the module docstring)."""
    rows = rows.reset_index(drop=True).assign(final=False)
    if "reason" not in rows:
        rows["reason"] = ""
    epochs = epoch_rows(rows)
    if epochs.empty:
        return rows
    problems = not_finite(epochs)
    keys = [c for c in ("panel", "run") if c in rows]
    for index in epochs.sort_values("epoch").groupby(keys, sort=False).tail(1).index:
        why = uncounted(epochs.loc[index], problems[index])
        if why:
            run = (rows[keys] == epochs.loc[index, keys]).all(axis=1)
            rows.loc[run & (rows["reason"] == ""), "reason"] = why
        else:
            rows.loc[index, "final"] = True
    # A row with a metric that is not a finite number says so (a diverged run's last loss is its result).
    flagged = problems[(problems != "") & (epochs["status"] != "diverged")].index
    flagged = flagged[rows.loc[flagged, "reason"] == ""]
    rows.loc[flagged, "reason"] = problems[flagged]
    return rows


@dataclass(frozen=True)
class SeedCount:
    """Of the runs planned for one optimizer in one setting, how many count, and why the others do not."""

    counted: int
    planned: int
    reasons: tuple[str, ...] = ()  # one per run that does not count: "seed 2: in progress: epoch 3 of 10 so far"

    def __str__(self) -> str:
        text = f"{self.counted} of {self.planned} seed{'s' if self.planned != 1 else ''}"
        return text + (f" ({'; '.join(self.reasons)})" if self.reasons else "")


def seed_count(rows: pd.DataFrame) -> SeedCount:
    """How many of the runs in `rows` (a figure table's rows of one optimizer in one setting, absent runs
    included) count (have a final row), out of those planned, with the reason of each that does not."""
    if rows.empty:
        return SeedCount(0, 0)
    reasons, counted = [], 0
    for run, group in rows.groupby("run", sort=False):
        if group["final"].astype(bool).any():
            counted += 1
            continue
        why = next((r for r in group["reason"] if isinstance(r, str) and r), group["status"].iloc[0])
        seed = group["seed"].iloc[0] if "seed" in group else None
        reasons.append(f"seed {int(seed)}: {why}" if seed is not None and not pd.isna(seed) else f"{run}: {why}")
    return SeedCount(counted, rows["run"].nunique(), tuple(reasons))


def annotate(rows: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """The figure table with the selection columns (see the module docstring), from a tuned-rate table."""
    rows = mark_final(describe_runs(rows))
    if rows.empty:
        return rows.assign(rates=[], selected=[])

    own = [setting_key(values) for values in rows[setting_columns(rows)].itertuples(index=False)]
    rates = pd.DataFrame({"key": own, "lr": rows["lr"]}).dropna().groupby("key")["lr"].nunique()
    rows["rates"] = [int(rates.get(key, 0)) for key in own]
    shared = setting_columns(rows, tuned)
    tuned_lr = {setting_key(row[c] for c in shared): row["lr"] for row in tuned.to_dict("records")}
    keys = [setting_key(values) for values in rows[shared].itertuples(index=False)]
    selected = []
    for key, lr, tuned, count in zip(keys, rows["lr"], tuned_family(rows), rows["rates"]):
        if not tuned:
            selected.append(True)
        elif key in tuned_lr:
            selected.append(not pd.isna(lr) and math.isclose(lr, tuned_lr[key], rel_tol=1e-6))
        else:
            selected.append(count == 1)
    rows["selected"] = selected
    return rows
