"""Every number the paper reports, beside the value this reproduction measured for it, compared like with like.

Each reported number (paper/reported_numbers.csv) names the panel it comes from by its role (agd.plan.roles) and
the setting it was measured in: architecture, dataset, depth, width, and the run's length in epochs or
iterations. The reproduced value is read from the run the figure shows (a baseline at its tuned rate) over that
length, as both its final and its best test accuracy
(paper_spec 6 #25); `reproduced` is the one the paper's wording names. `difference` (percentage points, or
decades for learning rates) is given only where the reproduced run matches that setting; otherwise it is
empty and `reason` says what differs. A number the paper quotes without running it is marked so.
"""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from agd.tables.measured import absent, decades, panel, tuned_rate
from agd.tables.selection import epoch_rows

COLUMNS = ["id", "figure", "quantity", "statistic", "unit", "reported", "reproduced", "reproduced_final",
           "reproduced_best", "difference", "comparable", "reason", "preset", "dataset", "epochs", "run", "source"]
RATES = ("tuned_lr", "tuned_lr_decades")


def up_to(rows: pd.DataFrame, iterations: float) -> pd.DataFrame:
    """The epoch rows up to `iterations` optimizer steps (all of them when it is not given)."""
    return rows if pd.isna(iterations) else rows[rows["step"] <= iterations]


def final_and_best(rows: pd.DataFrame, iterations: float = math.nan) -> pd.DataFrame:
    """Per run: final and best test accuracy (%) over its epoch rows (up to `iterations`)."""
    epochs = up_to(epoch_rows(rows), iterations).sort_values("epoch")
    grouped = epochs.groupby("run", sort=False)["test_acc"]
    return pd.DataFrame({"final": grouped.last() * 100, "best": grouped.max() * 100})


def candidate_rows(number: Mapping, figure: pd.DataFrame, optimizer: str | None = None) -> pd.DataFrame:
    """The rows of the number's panel and optimizer that the figure shows (a baseline at its tuned rate)."""
    optimizer = optimizer or number["optimizer"]
    rows = panel(figure, number["role"])
    if rows.empty:
        return rows
    rows = rows[(rows["optimizer"] == optimizer) & rows["selected"].astype(bool)]
    if not pd.isna(number["batch_size"]):
        rows = rows[rows["batch_size"] == int(number["batch_size"])]
    return rows


def mismatch(number: Mapping, rows: pd.DataFrame) -> str:
    """What differs between the reported number's setting and the reproduced run's ('' when nothing does)."""
    first = rows.iloc[0]
    differences = []
    for key in ("dataset", "arch", "depth", "width"):
        paper = number.get(key)
        if pd.isna(paper) or paper == "":
            continue
        ours = first[key]
        if pd.isna(ours) or str(ours) != str(paper) and not _same_number(ours, paper):
            differences.append(f"{key} {_plain(ours)}, not {_plain(paper)}")
    if not pd.isna(number.get("epochs")) and int(first["epochs"]) != int(number["epochs"]):
        differences.append(f"{int(first['epochs'])} epochs, not {int(number['epochs'])}")
    if not pd.isna(number.get("iterations")):
        steps = epoch_rows(rows)["step"].max()
        if pd.isna(steps) or steps < number["iterations"]:
            differences.append(f"{_plain(steps)} iterations, short of {int(number['iterations'])}")
    return "; ".join(differences)


def _same_number(a, b) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def _plain(value) -> str:
    try:
        number = float(value)
        return str(int(number)) if number.is_integer() else f"{number:g}"
    except (TypeError, ValueError):
        return str(value)


def length(rows: pd.DataFrame) -> float:
    """The epochs the figure reads of its runs."""
    return rows["epochs"].iloc[0] if "epochs" in rows else math.nan


def reproduce_rate(number: Mapping, figure: pd.DataFrame) -> dict:
    """A tuned learning rate, or SGD's over Adam's in decades, from the runs the figure shows."""
    def rate(optimizer: str) -> tuple[float, pd.DataFrame]:
        rows = candidate_rows(number, figure, optimizer)
        return tuned_rate(rows, optimizer), rows

    if number["statistic"] == "tuned_lr":
        value, rows = rate(number["optimizer"])
    else:
        (sgd, rows), (adam, _) = rate("sgd"), rate("adam")
        value = decades(sgd, adam)
    return {"reproduced": value, "rows": rows}


def reproduce_one(number: Mapping, figure: pd.DataFrame | None) -> dict:
    """The reproduced values of one reported number, the run they come from, and whether they compare."""
    result = {"reproduced": np.nan, "reproduced_final": np.nan, "reproduced_best": np.nan, "dataset": "",
              "epochs": np.nan, "run": "", "comparable": False, "reason": ""}
    statistic = number["statistic"]
    if statistic == "quoted":
        return result | {"reason": number["note"]}
    if figure is None:
        return result | {"run": absent(figure), "reason": absent(figure)}
    if statistic in RATES:
        found = reproduce_rate(number, figure)
        rows, value = found["rows"], found["reproduced"]
        if rows.empty or math.isnan(value):
            why = absent(figure, number["role"], rows)
            return result | {"run": why, "reason": why}
        reason = mismatch(number, rows)
        return result | {"reproduced": value, "dataset": rows["dataset"].iloc[0], "epochs": length(rows),
                         "run": ", ".join(sorted(epoch_rows(rows)["run"].unique())), "comparable": not reason,
                         "reason": reason}
    rows = candidate_rows(number, figure)
    per_run = final_and_best(rows, number.get("iterations", math.nan)) if not rows.empty else pd.DataFrame()
    if per_run.empty:
        why = absent(figure, number["role"], rows)
        dataset = ", ".join(sorted(rows["dataset"].unique())) if not rows.empty else ""
        return result | {"run": why, "dataset": dataset, "reason": why}
    if statistic == "grid_best_final_test_acc":
        run = per_run["final"].idxmax()
    elif statistic == "grid_worst_final_test_acc":
        run = per_run["final"].idxmin()
    elif statistic in ("final_test_acc", "best_test_acc"):
        run = per_run.index[0]
    else:
        raise ValueError(f"{number['id']}: unknown statistic {statistic!r}")
    chosen = rows[rows["run"] == run]
    reason = mismatch(number, chosen)
    final, best = per_run.loc[run, "final"], per_run.loc[run, "best"]
    return result | {"reproduced": float(best if statistic == "best_test_acc" else final),
                     "reproduced_final": float(final), "reproduced_best": float(best),
                     "dataset": chosen["dataset"].iloc[0], "epochs": length(chosen), "run": run,
                     "comparable": not reason, "reason": reason}


def difference(number: Mapping, found: Mapping) -> float:
    """Percentage points, or decades for a learning rate; NaN unless like is compared with like."""
    if not found["comparable"]:
        return math.nan
    if number["statistic"] == "tuned_lr":
        return decades(found["reproduced"], float(number["reported"]))
    return found["reproduced"] - float(number["reported"])


def numbers_table(reported: pd.DataFrame, figures: Mapping[str, pd.DataFrame], preset: str) -> pd.DataFrame:
    """`figures`: each figure's table as aggregation wrote it (with its `selected` column)."""
    rows = []
    for number in reported.to_dict("records"):
        found = reproduce_one(number, figures.get(number["figure"]))
        rows.append(number | found | {"preset": preset, "difference": difference(number, found)})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)
