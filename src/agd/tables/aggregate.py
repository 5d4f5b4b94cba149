"""From run directories to tidy tables: one CSV per figure (with the rows each panel shows marked, see
agd.tables.selection), the tuned learning rates, and the run summaries.

A table's parameter columns are its job's run-spec settings (agd.plan.specs) and the optimizer's family.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pandas as pd

from agd.plan import roles
from agd.plan.specs import ImageRun, LMRun, RunSpec
from agd.tables.selection import ABSENT, annotate, describe_runs, select_tuned

PARAMS = ["figure", "panel", roles.COLUMN, "run", *ImageRun.columns()]


def run_status(run_dir: Path) -> str:
    """completed or diverged (from run.json), running (metrics but no record yet) or missing."""
    record = run_dir / "run.json"
    if record.exists():
        return json.loads(record.read_text())["status"]
    return "running" if (run_dir / "metrics.csv").exists() else "missing"


def status_of(run_dir: Path, enabled: bool) -> str:
    """run_status, or `not_run` for a run the config disables (e.g. ImageNet, OpenWebText)."""
    return run_status(run_dir) if enabled else "not_run"


def run_rows(run_dir: Path, enabled: bool, column: str, limit: int) -> tuple[pd.DataFrame, str]:
    """A run's metric rows up to `limit` of `column` (the figure's epochs or iterations), and its status.

    A run that is not there still gets one row, with status `missing` (failed or not yet trained)
    or `not_run` (disabled in the config), so that its panel can say so.
    """
    status = status_of(run_dir, enabled)
    if status in ABSENT:
        return pd.DataFrame([{}]), status
    frame = pd.read_csv(run_dir / "metrics.csv")
    return frame[frame[column] <= limit], status


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
        frame, status = run_rows(Path(runs_dir) / member["run"], member["enabled"], "epoch", member["panel_epochs"])
        frames.append(frame.assign(**context, **params(member, ImageRun), status=status, epochs=member["panel_epochs"]))
    return leading_first(frames, PARAMS + ["status", "epochs", "family"])


def figure_table(members: Iterable[Mapping], runs_dir: Path, rule: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A figure's table with the rows each panel shows marked, and its tuned learning rates under `rule`."""
    rows = figure_rows(members, runs_dir)
    tuned = select_tuned(rows, rule)
    return annotate(rows, tuned), tuned


def summary(runs: pd.DataFrame, runs_dir: Path, spec: type[RunSpec],
            statistics: Callable[[pd.DataFrame], dict]) -> pd.DataFrame:
    """One row per run: its parameters, length and status, and `statistics` of its metrics.csv if it ran."""
    rows = []
    for run in runs.to_dict("records"):
        run_dir = Path(runs_dir) / run["run"]
        row = {"run": run["run"], **params(run, spec), spec.length: run[spec.length],
               "status": status_of(run_dir, run["enabled"])}
        if row["status"] not in ABSENT:
            row |= statistics(pd.read_csv(run_dir / "metrics.csv"))
        rows.append(row)
    return pd.DataFrame(rows)


def image_statistics(metrics: pd.DataFrame) -> dict:
    epochs = metrics[metrics["kind"] == "epoch"]
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
    return summary(runs, runs_dir, ImageRun, image_statistics)


# --- transformer runs ---

LM_PARAMS = ["figure", "panel", "run", *LMRun.columns()]


def lm_table(members: Iterable[Mapping], runs_dir: Path, text_meta: Mapping[str, Mapping]) -> pd.DataFrame:
    """Every metric row of the transformer runs, clipped to each panel's iterations, with the run's
    parameters, status, and the unigram entropy of the run's validation text (from its meta.json)."""
    frames = []
    for member in members:
        context = {key: member[key] for key in ("figure", "panel", "run")}
        frame, status = run_rows(Path(runs_dir) / member["run"], member["enabled"], "iter", member["panel_max_iters"])
        entropy = text_meta.get(member["text"], {}).get("unigram_entropy")
        frames.append(frame.assign(**context, **params(member, LMRun), status=status,
                                   max_iters=member["panel_max_iters"], unigram_entropy=entropy))
    leading = LM_PARAMS + ["status", "max_iters", "unigram_entropy", "family"]
    return describe_runs(leading_first(frames, leading), gate="text")


def lm_statistics(metrics: pd.DataFrame) -> dict:
    final = metrics.iloc[-1]
    return {
        "iterations": int(final["iter"]), "final_train_loss": final["train_loss"],
        "final_val_loss": final["val_loss"], "best_val_loss": metrics["val_loss"].min(),
        "tokens_per_s": metrics["tokens_per_s"].mean(), "wall_time_s": final["time_s"],
    }


def lm_summary_table(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """One row per transformer run: status, final and best validation loss, throughput and wall time."""
    return summary(runs, runs_dir, LMRun, lm_statistics)
