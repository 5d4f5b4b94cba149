"""The Fig. 3 grid at initialisation (results/init_check.csv): per cell, the objective, accuracies and AGD's eta
of the epoch-0 pass, beside the paper's digitised values (paper/init_values.csv), with a verdict per check.

What the paper shows at x=1 of Fig. 3 (paper_spec 2.4): the objective is about 1.0 in every cell (the square
loss of f = 0 against targets scaled to norm sqrt(d_L)), and eta grows with width at every depth, from 0.18
to 0.30 at depth 2 and from 0.05 to 0.32 at depth 32 (widths 64 to 2048, CIFAR-10). The digitised values are
read off a log axis to about 0.1 decade, hence ETA_FACTOR.
"""

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from agd.tables.aggregate import run_status
from agd.tables.measured import FAILS, HOLDS, OBJECTIVE_AT_INIT, rises, within, within_factor

PAPER_DATASET = "cifar10"
ETA_FACTOR = 1.25                # a measured eta within this factor of the digitised one matches
COLUMNS = ["depth", "width", "dataset", "loss", "status", "objective", "train_acc", "test_acc", "eta",
           "paper_eta", "eta_check", "objective_check", "eta_rises_with_width", "run"]


def epoch_zero(run_dir: Path) -> dict:
    """The epoch-0 row of a run's metrics (empty when the run has not got that far)."""
    path = run_dir / "metrics.csv"
    if not path.exists():
        return {}
    metrics = pd.read_csv(path)
    rows = metrics[(metrics["kind"] == "epoch") & (metrics["epoch"] == 0)]
    return rows.iloc[0].to_dict() if not rows.empty else {}


def eta_check(eta: float, paper_eta: float) -> str:
    if math.isnan(paper_eta) or math.isnan(eta):
        return ""
    return HOLDS if within_factor(eta, paper_eta, ETA_FACTOR) else FAILS


def objective_check(objective: float, loss: str) -> str:
    if loss != "mse" or math.isnan(objective):
        return ""  # the paper's 1.0 is the square loss of a zero output
    return HOLDS if within([objective], OBJECTIVE_AT_INIT) else FAILS


def rises_with_width(cells: pd.DataFrame) -> pd.Series:
    """Per depth (of one dataset and loss): eta at init strictly rises with width (empty where a cell has no eta)."""
    def verdict(row: pd.DataFrame) -> str:
        eta = row.sort_values("width")["eta"]
        if eta.isna().any() or len(eta) < 2:
            return ""
        return HOLDS if rises(eta) else FAILS

    keys = ["dataset", "loss", "depth"]
    verdicts = {key: verdict(row) for key, row in cells.groupby(keys)}
    return pd.Series([verdicts[key] for key in cells[keys].itertuples(index=False, name=None)], index=cells.index)


def init_table(runs: Iterable[Mapping], runs_dir: Path, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of the grid; the paper's eta only where the cell is the paper's (CIFAR-10, square loss)."""
    paper = {(int(r["depth"]), int(r["width"])): float(r["eta"]) for r in reference.to_dict("records")}
    rows = []
    for run in runs:
        first = epoch_zero(Path(runs_dir) / run["run"])
        depth, width = int(run["depth"]), int(run["width"])
        same_setting = run["dataset"] == PAPER_DATASET and run["loss"] == "mse"
        paper_eta = paper.get((depth, width), math.nan) if same_setting else math.nan
        eta = float(first.get("eta_mean", math.nan))
        objective = float(first.get("train_loss", math.nan))
        rows.append(dict(
            depth=depth, width=width, dataset=run["dataset"], loss=run["loss"],
            status=run_status(Path(runs_dir) / run["run"]), objective=objective,
            train_acc=float(first.get("train_acc", math.nan)), test_acc=float(first.get("test_acc", math.nan)),
            eta=eta, paper_eta=paper_eta, eta_check=eta_check(eta, paper_eta),
            objective_check=objective_check(objective, run["loss"]), run=run["run"],
        ))
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    table = table.sort_values(["depth", "width"], ignore_index=True)
    table["eta_rises_with_width"] = rises_with_width(table)
    return table[COLUMNS]
