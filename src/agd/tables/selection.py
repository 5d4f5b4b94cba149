"""Which rows each panel shows, decided once: the tuned rate of every baseline grid, the final row of every run,
and why a run is absent. Written as columns of the figure tables, which figures and numbers read.

Columns added to a figure table:
- `family`: the optimizer's family in the registry (agd, tuned, lr-free);
- `rates`: how many learning rates the optimizer has in the run's setting (panel and every key setting but lr);
- `selected`: the run stands for its optimizer in its setting: every run of an optimizer without a rate grid,
  and the run at the tuned rate of a grid (or at its only rate);
- `final`: the run's last epoch row within the figure's epochs;
- `reason`: why a run has no rows (missing, or disabled in config.yaml), empty for runs that exist.
"""

import math

import numpy as np
import pandas as pd

from agd.optim import registry
from agd.plan.specs import ImageRun
from agd.plan.tuning import best_rate, check_rule, tuning_score

ABSENT = ("missing", "not_run")
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
    a config switch can turn off: dataset or text)."""
    rows = rows.copy()
    if rows.empty:
        return rows.assign(family=[], reason=[])
    rows["family"] = rows["optimizer"].map(registry.family_of)
    rows["reason"] = [absence_reason(status, g) for status, g in zip(rows["status"], rows[gate])]
    return rows


def mark_final(rows: pd.DataFrame) -> pd.DataFrame:
    """The table with `final` marking each run's last epoch row."""
    rows = rows.assign(final=False)
    epochs = epoch_rows(rows)
    if not epochs.empty:
        rows.loc[epochs.sort_values("epoch").groupby("run", sort=False).tail(1).index, "final"] = True
    return rows


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
