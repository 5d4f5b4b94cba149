"""Every number the paper reports, beside the value this reproduction measured for it."""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from agd.tables.selection import epoch_rows

COLUMNS = ["id", "figure", "quantity", "statistic", "reported", "reproduced", "difference", "preset", "dataset",
           "run", "source"]


def final_and_best(rows: pd.DataFrame) -> pd.DataFrame:
    """Per run: final and best test accuracy (%) over its epoch rows."""
    epochs = epoch_rows(rows)
    grouped = epochs.groupby("run", sort=False)["test_acc"]
    return pd.DataFrame({"final": grouped.last() * 100, "best": grouped.max() * 100})


def candidate_rows(number: Mapping, figure: pd.DataFrame) -> pd.DataFrame:
    """The rows of the number's panel and optimizer that the figure shows (a baseline at its tuned rate)."""
    rows = figure[(figure["panel"] == number["panel"]) & (figure["optimizer"] == number["optimizer"])
                  & figure["selected"].astype(bool)]
    if not pd.isna(number["batch_size"]):
        rows = rows[rows["batch_size"] == int(number["batch_size"])]
    return rows


def reproduce_one(number: Mapping, figure: pd.DataFrame | None) -> dict:
    """The reproduced value of one reported number, and the run it comes from (NaN if not run)."""
    result = {"reproduced": np.nan, "dataset": "", "run": ""}
    if figure is None:
        return result | {"run": "figure not in this preset"}
    rows = candidate_rows(number, figure)
    per_run = final_and_best(rows)
    if per_run.empty:
        status = ", ".join(sorted(rows["status"].unique())) or "no such run"
        return result | {"run": f"not run ({status})", "dataset": ", ".join(sorted(rows["dataset"].unique()))}
    statistic = number["statistic"]
    if statistic == "grid_best_final_test_acc":
        run = per_run["final"].idxmax()
    elif statistic == "grid_worst_final_test_acc":
        run = per_run["final"].idxmin()
    elif statistic in ("final_test_acc", "best_test_acc"):
        run = per_run.index[0]
    else:
        raise ValueError(f"{number['id']}: unknown statistic {statistic!r}")
    value = per_run.loc[run, "best" if statistic == "best_test_acc" else "final"]
    dataset = rows.loc[rows["run"] == run, "dataset"].iloc[0]
    return {"reproduced": float(value), "dataset": dataset, "run": run}


def numbers_table(reported: pd.DataFrame, figures: Mapping[str, pd.DataFrame], preset: str) -> pd.DataFrame:
    """`figures`: each figure's table as aggregation wrote it (with its `selected` column)."""
    rows = []
    for number in reported.to_dict("records"):
        found = reproduce_one(number, figures.get(number["figure"]))
        rows.append(number | found | {
            "preset": preset,
            "difference": found["reproduced"] - number["reported"],
        })
    return pd.DataFrame(rows)[COLUMNS]
