"""From run directories to tidy tables: one CSV per figure (with the rows each panel shows marked, see
agd.tables.selection), the tuned learning rates, and the run summaries.

A table's parameter columns are its job's run-spec settings (agd.plan.specs) and the optimizer's family.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

from agd.plan import roles
from agd import records
from agd.plan.specs import ImageRun, LMRun, RunSpec
from agd.records import DAMAGED
from agd.tables.selection import ABSENT, absence_reason, annotate, describe_runs, select_tuned

PARAMS = ["figure", "panel", roles.COLUMN, "run", *ImageRun.columns()]
ACCURACIES = ("train_acc", "test_acc")
NUMERIC = ("epoch", "iter", "step", "train_loss", "test_loss", "val_loss", *ACCURACIES)
# The columns a table reads of each job's metrics.csv, by the column that sets its length.
REQUIRED = {"epoch": ("kind", "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc"),
            "iter": ("iter", "train_loss", "val_loss")}
LENGTH = {"epoch": ImageRun.length, "iter": LMRun.length}  # the setting a run's record holds its length in


def run_status(run_dir: Path) -> str:
    """completed or diverged (a record that verifies), running (metrics but no record yet), missing, or damaged
    (files that disagree: see agd.records)."""
    return records.inspect(run_dir).status


def metrics_problem(frame: pd.DataFrame, path: Path, column: str) -> str | None:
    """What makes a metrics file's rows unusable: no rows, a column missing, text where numbers belong, a
    row without its `column`, an accuracy outside [0, 1] (inf included), none of which a run writes; None if
    they are usable."""
    missing = [name for name in REQUIRED[column] if name not in frame]
    if missing:
        return f"{path} has no {', '.join(missing)} column; delete the run's directory to train it again"
    if frame[column].isna().any():
        return f"{path} has a row without its {column}; delete the run's directory to train it again"
    for name in (c for c in NUMERIC if c in frame):
        numbers = pd.to_numeric(frame[name], errors="coerce")
        text = frame[name][numbers.isna() & frame[name].notna()]
        if not text.empty:
            return f"{path}: {name} holds {text.iloc[0]!r}, not a number; delete the run's directory to train it again"
        if name in ACCURACIES:
            wrong = numbers[numbers.notna() & ~numbers.between(0, 1)]
            if not wrong.empty:
                return (f"{path}: {name} {float(wrong.iloc[0])} is not an accuracy (a fraction in [0, 1]); no run "
                        "writes it. Delete the run's directory to train it again")
    return None


def read_run(run_dir: Path, enabled: bool, column: str) -> tuple[pd.DataFrame | None, str, str]:
    """A run's metric rows (None when it has none to show), its status, and why it cannot count when its files
    say so (a damaged run: what disagrees)."""
    if not enabled:
        return None, "not_run", ""
    found = records.inspect(run_dir, LENGTH[column])
    if found.metrics is None:
        return None, found.status, found.reason
    try:
        frame = pd.read_csv(found.metrics)
        problem = metrics_problem(frame, found.metrics, column)
    except (OSError, ValueError) as e:  # pandas' parser errors are ValueErrors
        frame, problem = None, f"{found.metrics} cannot be read ({e}); delete the run's directory to train it again"
    if problem is None and frame.empty:  # a run stopped before its first row; an ended one always has rows
        if found.status == "running":
            return None, "running", "no metric row yet"
        problem = f"{found.metrics} holds no rows; delete the run's directory to train it again"
    if problem:
        return None, DAMAGED, problem
    return frame, found.status, ""


def status_of(run_dir: Path, enabled: bool) -> str:
    """run_status, or `not_run` for a run the config disables (e.g. ImageNet, OpenWebText)."""
    return run_status(run_dir) if enabled else "not_run"


def run_rows(run_dir: Path, enabled: bool, column: str, limit: int) -> tuple[pd.DataFrame, str, str]:
    """A run's metric rows up to `limit` of `column` (the figure's epochs or iterations), its status and reason.

    A run with no rows to show still gets one row, with status `missing` (failed or not yet trained),
    `not_run` (disabled in the config), `damaged` (its files disagree; the reason says how) or `running` (no
    row yet), so that its panel can say so.
    """
    frame, status, reason = read_run(run_dir, enabled, column)
    if frame is None:
        return pd.DataFrame([{}]), status, reason
    return frame[frame[column] <= limit], status, reason


def leading_first(frames: list[pd.DataFrame], leading: list[str]) -> pd.DataFrame:
    table = pd.concat(frames, ignore_index=True)
    return table[leading + [c for c in table.columns if c not in leading]]


def params(member: Mapping, spec: type[RunSpec]) -> dict:
    """A run-table row's parameters under their CSV column names (e.g. an LM run's lr is `peak_lr`, since
    `lr` is the scheduled rate of each metric row)."""
    return {f.column: member[f.name] for f in spec.key_fields() if f.column} | {"family": member["family"]}


def figure_rows(members: Iterable[Mapping], runs_dir: Path) -> pd.DataFrame:
    """Every metric row of a figure's runs, clipped to the figure's epochs, with the run's parameters
    (one row for a run that is missing or not run: see run_rows)."""
    frames = []
    for member in members:
        context = {key: member[key] for key in ("figure", "panel", "run")} | {roles.COLUMN: member.get(roles.COLUMN)}
        frame, status, reason = run_rows(Path(runs_dir) / member["run"], member["enabled"], "epoch",
                                         member["panel_epochs"])
        frames.append(frame.assign(**context, **params(member, ImageRun), status=status, epochs=member["panel_epochs"],
                                   reason=reason))
    return leading_first(frames, PARAMS + ["status", "epochs", "family"])


def figure_table(members: Iterable[Mapping], runs_dir: Path, rule: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A figure's table with the rows each panel shows marked, and its tuned learning rates under `rule`."""
    rows = figure_rows(members, runs_dir)
    tuned = select_tuned(rows, rule)
    return annotate(rows, tuned), tuned


def summary(runs: pd.DataFrame, runs_dir: Path, spec: type[RunSpec], column: str, done: str, gate: str,
            statistics: Callable[[pd.DataFrame], dict]) -> pd.DataFrame:
    """One row per run: its parameters, length, status, `statistics` of its metrics (`done`: how far it got) if
    it has rows, and the reason it cannot count: absent, damaged, still in progress, or ended short of its
    length."""
    rows = []
    for run in runs.to_dict("records"):
        frame, status, reason = read_run(Path(runs_dir) / run["run"], run["enabled"], column)
        row = {"run": run["run"], **params(run, spec), spec.length: run[spec.length], "status": status,
               "reason": reason}
        stats = statistics(frame) if frame is not None else {}
        row |= stats
        not_finite = [f"{key} is {value}" for key, value in stats.items()
                      if key.startswith("final_") and not math.isfinite(value)]
        if status in ABSENT:
            row["reason"] = reason or absence_reason(status, run[gate])
        elif not stats:
            row["reason"] = reason or "no metric row yet"
        elif status == "running":
            row["reason"] = f"in progress: {done} {stats[done]} of {run[spec.length]} so far"
        elif status == "completed" and stats[done] < run[spec.length]:
            row["reason"] = f"ended at {done} {stats[done]} of the {run[spec.length]} planned"
        elif status == "completed" and not_finite:
            row["reason"] = f"{', '.join(not_finite)}: not a number to compare"
        rows.append(row)
    return pd.DataFrame(rows)


def image_statistics(metrics: pd.DataFrame) -> dict:
    epochs = metrics[metrics["kind"] == "epoch"]
    if epochs.empty:
        return {}
    final = epochs.iloc[-1]
    best = epochs.loc[epochs["test_acc"].fillna(-1).idxmax()]
    return {
        "epochs_completed": int(final["epoch"]),
        "final_train_loss": final["train_loss"], "best_train_loss": epochs["train_loss"].min(),
        "final_test_acc": final["test_acc"], "best_test_acc": best["test_acc"],
        "best_test_acc_epoch": int(best["epoch"]), "final_train_acc": final["train_acc"],
        "wall_time_s": final["time_s"],
    }


def summary_table(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """One row per image run: status, final and best train loss and test accuracy, and wall time."""
    return summary(runs, runs_dir, ImageRun, "epoch", "epochs_completed", "dataset", image_statistics)


# --- transformer runs ---

LM_PARAMS = ["figure", "panel", "run", *LMRun.columns()]


def lm_table(members: Iterable[Mapping], runs_dir: Path, text_meta: Mapping[str, Mapping]) -> pd.DataFrame:
    """Every metric row of the transformer runs, clipped to each panel's iterations, with the run's
    parameters, status, and the unigram entropy of the run's validation text (from its meta.json)."""
    frames = []
    for member in members:
        context = {key: member[key] for key in ("figure", "panel", "run")}
        frame, status, reason = run_rows(Path(runs_dir) / member["run"], member["enabled"], "iter",
                                         member["panel_max_iters"])
        entropy = text_meta.get(member["text"], {}).get("unigram_entropy")
        planned = member["panel_max_iters"]
        if status in ("running", "completed") and "iter" in frame and frame["iter"].max() < planned:
            reached = int(frame["iter"].max())
            reason = (f"in progress: iter {reached} of {planned} so far" if status == "running"
                      else f"ended at iter {reached} of the figure's {planned}")
        frames.append(frame.assign(**context, **params(member, LMRun), status=status,
                                   max_iters=planned, unigram_entropy=entropy, reason=reason))
    leading = LM_PARAMS + ["status", "max_iters", "unigram_entropy", "family"]
    return describe_runs(leading_first(frames, leading), gate="text")


def lm_statistics(metrics: pd.DataFrame) -> dict:
    if metrics.empty:
        return {}
    final = metrics.iloc[-1]
    return {
        "iterations": int(final["iter"]), "final_train_loss": final["train_loss"],
        "final_val_loss": final["val_loss"], "best_val_loss": metrics["val_loss"].min(),
        "tokens_per_s": metrics["tokens_per_s"].mean(), "wall_time_s": final["time_s"],
    }


def lm_summary_table(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """One row per transformer run: status, final and best validation loss, throughput and wall time."""
    return summary(runs, runs_dir, LMRun, "iter", "iterations", "text", lm_statistics)
