"""What a panel measured, held against the paper: the core of the numbers table, the claims and the init check.

A panel is found by its role (agd.plan.roles), never by its name in config.yaml, and read through the rows
aggregation chose (agd.tables.selection). A comparison with the paper ends in a verdict: `holds`, `fails`,
`inconclusive` (the seeds disagree), or `not testable here` with the reason, such as the panel not having run.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from agd.plan import roles
from agd.tables.selection import epoch_rows

HOLDS, FAILS, INCONCLUSIVE, UNTESTABLE = "holds", "fails", "inconclusive", "not testable here"
OBJECTIVE_AT_INIT = (0.9, 1.1)  # the paper's "objective about 1.0" at initialisation (paper_spec 2.0, 2.4)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    measured: str = ""
    reason: str = ""


def untestable(reason: str, measured: str = "") -> Verdict:
    return Verdict(UNTESTABLE, measured, reason)


def judged(holds: bool, measured: str = "", reason: str = "") -> Verdict:
    return Verdict(HOLDS if holds else FAILS, measured, reason)


def panel(figure: pd.DataFrame | None, role: str) -> pd.DataFrame:
    """Every row of the figure's panel that plays `role` (none when the figure or the panel is not there)."""
    if role not in {name for figure_roles in roles.ROLES.values() for name in figure_roles}:
        raise ValueError(f"no panel role {role!r} in agd.plan.roles")
    if figure is None:
        return pd.DataFrame()
    return figure[figure[roles.COLUMN] == role] if roles.COLUMN in figure else figure.iloc[0:0]


def shown(rows: pd.DataFrame) -> pd.DataFrame:
    """The epoch rows of the runs that stand for their optimizer (aggregation's `selected`, where a table has it)."""
    if rows.empty:
        return rows
    rows = epoch_rows(rows)
    return rows[rows["selected"].astype(bool)] if "selected" in rows else rows


def all_epochs(rows: pd.DataFrame) -> pd.DataFrame:
    """The epoch rows of every run that exists, selected or not (a learning-rate sweep shows them all)."""
    return epoch_rows(rows) if not rows.empty else rows


def panel_shown(figure: pd.DataFrame | None, role: str) -> pd.DataFrame:
    """The epoch rows of the runs that stand for their optimizer in the panel that plays `role`."""
    return shown(panel(figure, role))


def finals(rows: pd.DataFrame) -> pd.DataFrame:
    """Each run's last epoch row (aggregation's `final`)."""
    return rows[rows["final"].astype(bool)] if not rows.empty else rows


def absent(figure: pd.DataFrame | None, role: str | None = None, rows: pd.DataFrame | None = None) -> str:
    """Why a figure, its panel that plays `role`, or some `rows` of that panel, hold nothing to measure."""
    if figure is None:
        return "the figure is not in this preset"
    whole = figure if role is None else panel(figure, role)
    if whole.empty:
        return f"no panel of this preset plays {role}"
    rows = whole if rows is None else rows
    reasons = sorted(set(rows["reason"].dropna()) - {""}) if "reason" in rows else []
    return "not run: " + ("; ".join(reasons) or ("no such run" if rows.empty else "no rows yet"))


def tuned_rate(rows: pd.DataFrame, optimizer: str) -> float:
    """The learning rate that stands for `optimizer` in a panel (its tuned rate, or its only one); NaN if none ran."""
    mine = epoch_rows(rows[(rows["optimizer"] == optimizer) & rows["selected"].astype(bool)]) if not rows.empty \
        else rows
    return float(mine["lr"].iloc[0]) if not mine.empty else math.nan


def decades(high: float, low: float) -> float:
    """How many powers of ten `high` is above `low` (NaN unless both are positive)."""
    return math.log10(high / low) if high > 0 and low > 0 else math.nan


def within_factor(measured: float, paper: float, factor: float) -> bool:
    return abs(math.log(measured / paper)) <= math.log(factor)


def within(values: Iterable[float], bounds: tuple[float, float]) -> bool:
    values = np.asarray(list(values), float)
    return bool(((bounds[0] <= values) & (values <= bounds[1])).all())


def rises(values: Iterable[float]) -> bool:
    """Strictly increasing."""
    return bool((np.diff(np.asarray(list(values), float)) > 0).all())
