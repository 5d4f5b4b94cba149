"""The metric rows of the peers block's runs, image and GPT alike, as its tables and tuning stage read them.

An image run's rows are its epochs; a GPT cell's run (agd.jobs.train_lm) logs a row every `eval_interval`
iterations, and here each such row is one of its `epoch` rows (`kind` epoch, `epoch` its iteration, `epochs` the
cell's iterations, `lr` its peak rate), so that one time axis, one `final` row per run and one tuning rule serve
every cell. A GPT row has validation and test losses and no accuracies.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from agd.tables.aggregate import figure_rows, lm_table
from agd.tables.selection import describe_runs, is_lm, mark_final


def lm_rows_as_epochs(table: pd.DataFrame) -> pd.DataFrame:
    """agd.tables.aggregate.lm_table's rows on the peers' axes (see the module docstring); the rate each row logged
    (AdamW's scheduled rate) gives way to the run's peak rate, the one its study chose."""
    rows = table.drop(columns=["lr"], errors="ignore").rename(columns={"peak_lr": "lr", "max_iters": "epochs"})
    rows["epoch"] = rows["iter"] if "iter" in rows else pd.NA
    rows["kind"] = rows["epoch"].map(lambda value: "epoch" if pd.notna(value) else None)
    return rows


def run_rows(members: Iterable[Mapping], runs_dir: Path, lm_runs_dir: Path | None = None) -> pd.DataFrame:
    """Every metric row of these runs (an image run's under `runs_dir`, a GPT's under `lm_runs_dir`), each run's
    family and why it is absent, and its final row marked (agd.tables.selection.mark_final)."""
    members = [dict(member) for member in members]
    image = [member for member in members if not is_lm(member)]
    lm = [member for member in members if is_lm(member)]
    frames = []
    if image or not lm:
        frames.append(mark_final(describe_runs(figure_rows(image, Path(runs_dir)))))
    if lm:
        rows = lm_rows_as_epochs(lm_table(lm, Path(lm_runs_dir or runs_dir), {}))
        frames.append(mark_final(rows))
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
