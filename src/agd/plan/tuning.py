"""How a baseline's learning rate is chosen from its grid (config.yaml's tuning_rule): one score per run, the
best-scoring rate, ties to the smaller one. Planning reads it to plan, tables to report, and the job that
evaluates a tuned rate on further seeds to pick the rate."""

import math
from collections.abc import Mapping

import pandas as pd

TUNING_RULES = ("final_test_acc", "best_test_acc", "final_train_loss")


def check_rule(rule: str) -> None:
    if rule not in TUNING_RULES:
        raise ValueError(f"tuning_rule {rule!r}: choose one of {', '.join(TUNING_RULES)}")


def tuning_score(run_rows: pd.DataFrame, rule: str) -> float:
    """Higher is better; a diverged or empty run scores -inf."""
    epochs = run_rows[run_rows["kind"] == "epoch"] if "kind" in run_rows else run_rows.iloc[:0]
    if epochs.empty:
        return -math.inf
    final = epochs.iloc[-1]
    score = {
        "final_test_acc": final["test_acc"],
        "best_test_acc": epochs["test_acc"].max(),
        "final_train_loss": -final["train_loss"],
    }[rule]
    return -math.inf if pd.isna(score) else float(score)


def best_rate(scores: Mapping[float, float]) -> float:
    """The rate with the highest score; ties go to the smaller rate."""
    return max(scores, key=lambda lr: (scores[lr], -lr))
