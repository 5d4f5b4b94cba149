"""How a learning rate is chosen from a grid: one score per run (a tuning rule), the best-scoring rate with ties to
the smaller one, and, for a benchmark's tuning study, whether the grid must first reach past its best.

The paper's figures tune on the test split (config.yaml's `tuning_rule`, the paper's own protocol); the peers
block tunes on a validation split held out of the training set and never on the test split (`VALIDATION_RULES`).
A study whose best rate sits at an edge of its grid extends the grid by a decade on that side and is judged
again, until the best is interior or the next rate would leave `BOUNDS`. Planning reads this module to plan,
tables to report and the tuning stage of the workflow to decide. Imports no torch.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pandas as pd

# <final|best>_<split>_<metric>; loss rules prefer the lower value.
TUNING_RULES = ("final_test_acc", "best_test_acc", "final_train_loss", "final_val_acc", "best_val_acc",
                "final_val_loss")
VALIDATION_RULES = tuple(rule for rule in TUNING_RULES if "_val_" in rule)
BOUNDS = (1e-6, 10.0)  # the rates a study may extend its grid to
VALIDATION = "validation"


def check_rule(rule: str) -> None:
    if rule not in TUNING_RULES:
        raise ValueError(f"tuning_rule {rule!r}: choose one of {', '.join(TUNING_RULES)}")


def split_of(rule: str) -> str:
    """The split a rule reads: test, train or validation."""
    split = rule.split("_")[1]
    return VALIDATION if split == "val" else split


def tuning_score(run_rows: pd.DataFrame, rule: str) -> float:
    """Higher is better; a diverged or empty run, or one without the rule's metric, scores -inf."""
    epochs = run_rows[run_rows["kind"] == "epoch"] if "kind" in run_rows else run_rows.iloc[:0]
    which, split, metric = rule.split("_")
    column = f"{split}_{metric}"
    if epochs.empty or column not in epochs:
        return -math.inf
    values = pd.to_numeric(epochs[column], errors="coerce")
    sign = -1.0 if metric == "loss" else 1.0
    if which == "final":
        score = sign * values.iloc[-1]
    else:
        score = (sign * values).max()
    return -math.inf if pd.isna(score) or not math.isfinite(score) else float(score)


def best_rate(scores: Mapping[float, float]) -> float:
    """The rate with the highest score; ties go to the smaller rate."""
    return max(scores, key=lambda lr: (scores[lr], -lr))


def decade(lr: float, direction: int) -> float:
    """The rate a decade above (direction 1) or below (-1) `lr`, as it would be written (1e-05, not 1.0000001e-05)."""
    return float(f"{lr * 10.0 ** direction:.12g}")


@dataclass(frozen=True)
class Decision:
    """A study's verdict on its grid so far: the chosen rate, or the rate to add first."""

    chosen: float | None
    extend: float | None
    best: float
    reason: str


def decide(scores: Mapping[float, float], bounds: tuple[float, float] = BOUNDS, extend: bool = True) -> Decision:
    """Choose the best rate of a grid unless it sits at an edge that may still move a decade outwards (within
    `bounds`); then extend there first. Without `extend` (a smoke run, or partial results) the best is chosen
    wherever it sits."""
    rates = sorted(scores)
    best = best_rate(scores)
    if extend and len(rates) > 0:
        low, high = bounds
        if best == rates[-1] and decade(best, 1) <= high * (1 + 1e-9):
            return Decision(None, decade(best, 1), best, f"best at the top of the grid ({best:g}): extend to "
                                                         f"{decade(best, 1):g}")
        if best == rates[0] and decade(best, -1) >= low * (1 - 1e-9):
            return Decision(None, decade(best, -1), best, f"best at the bottom of the grid ({best:g}): extend to "
                                                          f"{decade(best, -1):g}")
    at_bound = best in (rates[0], rates[-1]) and len(rates) > 1
    reason = ("best at the edge, at the bound of the rates a study may try" if at_bound and extend
              else "best at the edge; the grid was not extended" if at_bound else "best inside the grid")
    return Decision(best, None, best, reason)


def rates_of_round(initial: Iterable[float], earlier: Iterable[Mapping]) -> list[float]:
    """The grid of a study's next round: its initial rates and every extension its earlier rounds' decisions asked
    for."""
    return sorted({*map(float, initial), *(float(d["extend"]) for d in earlier if d["extend"] is not None)})
