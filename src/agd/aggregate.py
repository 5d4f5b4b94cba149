"""From run directories to tidy tables: one CSV per figure, the run summary, and the tuned learning rates."""

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

PARAMS = ["figure", "panel", "run", "arch", "dataset", "loss", "depth", "width", "batch_size", "optimizer",
          "lr", "seed", "bias"]
RUN_PARAMS = PARAMS[2:]
SETTING = ["panel", "arch", "dataset", "loss", "depth", "width", "batch_size", "seed", "optimizer"]
BASELINES = ("adam", "sgd")
TUNING_RULES = ("final_test_acc", "best_test_acc", "final_train_loss")
ABSENT = ("missing", "not_run")


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


def figure_table(members: Iterable[Mapping], runs_dir: Path) -> pd.DataFrame:
    """Every metric row of a figure's runs, clipped to the figure's epochs, with the run's parameters
    (one row for a run that is missing or not run: see run_rows)."""
    frames = []
    for member in members:
        params = {key: member[key] for key in PARAMS}
        frame, status = run_rows(Path(runs_dir) / member["run"], member["enabled"], "epoch", member["panel_epochs"])
        frames.append(frame.assign(**params, status=status, epochs=member["panel_epochs"]))
    return leading_first(frames, PARAMS + ["status", "epochs"])


def summary_table(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """One row per run: status, final and best train loss and test accuracy, and wall time."""
    rows = []
    for run in runs.to_dict("records"):
        run_dir = Path(runs_dir) / run["run"]
        row = {key: run[key] for key in RUN_PARAMS} | {"epochs": run["epochs"],
                                                        "status": status_of(run_dir, run["enabled"])}
        if row["status"] not in ABSENT:
            metrics = pd.read_csv(run_dir / "metrics.csv")
            epochs = metrics[metrics["kind"] == "epoch"]
            final = epochs.iloc[-1]
            best = epochs.loc[epochs["test_acc"].fillna(-1).idxmax()]
            row |= {
                "epochs_completed": int(final["epoch"]),
                "final_train_loss": final["train_loss"], "best_train_loss": epochs["train_loss"].min(),
                "final_test_acc": final["test_acc"], "best_test_acc": best["test_acc"],
                "best_test_acc_epoch": int(best["epoch"]), "final_train_acc": final["train_acc"],
                "wall_time_s": final["time_s"],
            }
        rows.append(row)
    return pd.DataFrame(rows)


def tuning_score(run_rows: pd.DataFrame, rule: str) -> float:
    """Higher is better; a diverged or empty run scores -inf."""
    epochs = run_rows[run_rows["kind"] == "epoch"]
    if epochs.empty:
        return -np.inf
    final = epochs.iloc[-1]
    score = {
        "final_test_acc": final["test_acc"],
        "best_test_acc": epochs["test_acc"].max(),
        "final_train_loss": -final["train_loss"],
    }[rule]
    return -np.inf if pd.isna(score) else float(score)


def select_tuned(figure: pd.DataFrame, rule: str) -> pd.DataFrame:
    """For each baseline and setting of a figure, the learning rate its grid's best run used."""
    if rule not in TUNING_RULES:
        raise ValueError(f"tuning_rule {rule!r}: choose one of {', '.join(TUNING_RULES)}")
    columns = ["figure", *SETTING, "lr", "rule", "score", "candidates"]
    baselines = figure[figure["optimizer"].isin(BASELINES)]
    rows = []
    for setting, group in baselines.groupby(SETTING, dropna=False):
        scores = {lr: tuning_score(rows_of_lr, rule) for lr, rows_of_lr in group.groupby("lr")}
        best_lr = max(scores, key=lambda lr: (scores[lr], -lr))  # ties: the smaller rate
        rows.append({"figure": group["figure"].iloc[0], **dict(zip(SETTING, setting)), "lr": best_lr,
                     "rule": rule, "score": scores[best_lr], "candidates": len(scores)})
    return pd.DataFrame(rows, columns=columns)


# --- transformer runs ---

LM_PARAMS = ["figure", "panel", "run", "text", "n_layer", "n_head", "n_embd", "block_size", "dropout", "bias",
             "batch_size", "grad_accum", "optimizer", "peak_lr", "warmup_iters", "seed"]


def lm_params(member: Mapping, keys: list[str]) -> dict:
    """A run's parameters; AdamW's configured rate is `peak_lr`, since `lr` is the scheduled rate of each row."""
    return {key: member["lr" if key == "peak_lr" else key] for key in keys}


def lm_table(members: Iterable[Mapping], runs_dir: Path, text_meta: Mapping[str, Mapping]) -> pd.DataFrame:
    """Every metric row of the transformer runs, clipped to each panel's iterations, with the run's
    parameters, status, and the unigram entropy of the run's validation text (from its meta.json)."""
    frames = []
    for member in members:
        params = lm_params(member, LM_PARAMS)
        frame, status = run_rows(Path(runs_dir) / member["run"], member["enabled"], "iter", member["panel_max_iters"])
        entropy = text_meta.get(member["text"], {}).get("unigram_entropy")
        frames.append(frame.assign(**params, status=status, max_iters=member["panel_max_iters"],
                                   unigram_entropy=entropy))
    return leading_first(frames, LM_PARAMS + ["status", "max_iters", "unigram_entropy"])


def lm_summary_table(runs: pd.DataFrame, runs_dir: Path) -> pd.DataFrame:
    """One row per transformer run: status, final and best validation loss, throughput and wall time."""
    rows = []
    for run in runs.to_dict("records"):
        run_dir = Path(runs_dir) / run["run"]
        row = lm_params(run, LM_PARAMS[2:]) | {"max_iters": run["max_iters"],
                                                "status": status_of(run_dir, run["enabled"])}
        if row["status"] not in ABSENT:
            metrics = pd.read_csv(run_dir / "metrics.csv")
            final = metrics.iloc[-1]
            row |= {
                "iterations": int(final["iter"]), "final_train_loss": final["train_loss"],
                "final_val_loss": final["val_loss"], "best_val_loss": metrics["val_loss"].min(),
                "tokens_per_s": metrics["tokens_per_s"].mean(), "wall_time_s": final["time_s"],
            }
        rows.append(row)
    return pd.DataFrame(rows)
