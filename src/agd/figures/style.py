"""Shared look of the figures: the paper's colours and line styles, sizes, and the notes every figure carries.

Figures draw what aggregation chose (agd.tables.selection's columns: selected, final, reason); they do not
choose rows themselves, and find a panel by its role (`panel`, agd.plan.roles). Runs are drawn at x = epoch + 1,
so that the pass at initialisation sits at x = 1.
"""

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from agd.optim import registry  # noqa: E402
from agd.tables.claims import caption_lines  # noqa: E402
from agd.tables.measured import panel, shown  # noqa: E402
from agd.tables.selection import ABSENT, epoch_rows, ran  # noqa: E402

STYLE_FILE = Path(__file__).with_name("agd.mplstyle")

OPTIMIZER_COLORS = {entry.name: entry.color for entry in registry.REGISTRY.values()}
OPTIMIZER_LABELS = {entry.name: entry.label for entry in registry.REGISTRY.values()}
ETA_COLOR = "#1f77b4"        # automatic learning rate (tab:blue)
OBJECTIVE_COLOR = "#bcbd22"  # tab:olive
TRAIN_ACC_COLOR = "#17becf"  # tab:cyan
TEST_ACC_COLOR = "#e377c2"   # tab:pink
TEST_DASHES = (0, (1.5, 2.475))          # test curves in the showcase and Fig. 2: dotted
BASELINE_STYLE = {"linestyle": "--", "alpha": 0.5}  # Fig. 1's tuned baseline: faint dashed
BAND_ALPHA = 0.3                          # min-max bands
NOTE_SIZE = 5                             # notes inside a panel
POINTS_PER_INCH = 72
METRIC_LEGEND = ("automatic learning rate", "objective", "train accuracy", "test accuracy")


def figure(width_pt: float, height_pt: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure of the paper's size in points, in the project style; returns (fig, axes array)."""
    plt.style.use(STYLE_FILE)
    return plt.subplots(nrows, ncols, figsize=(width_pt / POINTS_PER_INCH, height_pt / POINTS_PER_INCH),
                        squeeze=False, **kwargs)


def not_run_text(panel_rows: pd.DataFrame) -> str | None:
    """Why a panel has nothing to show (aggregation's `reason` of its runs), or None if it has runs."""
    if panel_rows.empty:
        return "not in this preset"
    if not panel_rows["status"].isin(ABSENT).all():
        return None
    if (panel_rows["status"] == "not_run").all():
        what, _, fix = panel_rows["reason"].iloc[0].partition(" (")
        return f"not run: {what}" + (f"\n({fix.replace(' in ', chr(10) + 'in ')}" if fix else "")
    return f"not run: {panel_rows['run'].nunique()} run(s) missing"


def mark_not_run(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=7, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def missing_note(ax: plt.Axes, panel_rows: pd.DataFrame) -> None:
    """A small note in a panel that shows some runs while others are missing."""
    missing = panel_rows[panel_rows["status"] == "missing"]["run"].nunique()
    if missing:
        ax.text(0.98, 0.02, f"{missing} run(s) missing", ha="right", va="bottom", transform=ax.transAxes,
                fontsize=6, color="0.4")


def provenance(data: pd.DataFrame, context: dict) -> str:
    """What the figure was made from: preset, datasets (texts) and epochs (iterations), as far as its table says."""
    present = ran(data) if "status" in data else data
    parts = [context["figure"], f"preset {context['preset']}"]
    if "text" in data:
        parts.append(f"text {', '.join(sorted(present['text'].dropna().unique())) or 'none'}")
    if "max_iters" in data:
        iterations = sorted(present["max_iters"].dropna().unique())
        parts.append(f"iterations {', '.join(str(int(i)) for i in iterations) or '-'}")
    if "dataset" in data:
        parts.append(f"data {', '.join(sorted(present['dataset'].dropna().unique())) or 'none'}")
    if "epochs" in data:
        parts.append(f"epochs {', '.join(str(int(e)) for e in sorted(present['epochs'].dropna().unique())) or '-'}")
    if "width" in data and "text" not in data:
        parts.append(f"widths {', '.join(str(int(w)) for w in sorted(present['width'].dropna().unique())) or '-'}")
    return " | ".join(parts)


def footer(fig: plt.Figure, data: pd.DataFrame, context: dict) -> None:
    """Printed on the figure itself, so a quick-preset figure is never taken for the paper's."""
    fig.text(0.5, -0.01, provenance(data, context), ha="center", va="top", fontsize=6, color="0.35")


def caption(title: str, data: pd.DataFrame, context: dict, claims: pd.DataFrame | None = None) -> str:
    """The caption file's text: what the figure draws, what this rendering was made from, and the paper's
    claims about it with their verdicts on these runs (results/claims.csv)."""
    notes = "".join(f" {note}." for note in context.get("notes", []))
    verdicts = caption_lines(claims, context["figure"]) if claims is not None else []
    text = f"{title}\n\n{provenance(data, context)}.{notes}"
    if verdicts:
        text += " " + " ".join(verdicts)
    return text + "\n"


def metric_legend_handles() -> list:
    """Handles for METRIC_LEGEND: eta (line and band), objective, train and test accuracy."""
    eta = (Patch(facecolor=ETA_COLOR, alpha=BAND_ALPHA, linewidth=0), Line2D([], [], color=ETA_COLOR))
    return [eta, Line2D([], [], color=OBJECTIVE_COLOR), Line2D([], [], color=TRAIN_ACC_COLOR),
            Line2D([], [], color=TEST_ACC_COLOR)]


def values(rows: pd.DataFrame, column: str, positive: bool = False) -> np.ndarray:
    """A metric as floats, with non-finite values (and, for log axes, non-positive ones) as NaN gaps."""
    if column not in rows:
        return np.full(len(rows), np.nan)
    out = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(out)
    if positive:
        bad |= ~(out > 0)
    return np.where(bad, np.nan, out)


def log_limits(arrays, paper: tuple[float, float], room: float = 0.0) -> tuple[float, float]:
    """The paper's log range, widened by whole decades to the data (within 1e-12..1e6), keeping `room`
    decades free above the data (for a note at the top of a panel)."""
    data = np.concatenate([np.ravel(a) for a in arrays]) if len(arrays) else np.array([])
    data = data[np.isfinite(data) & (data > 0)]
    low, high = paper
    if data.size:
        low = min(low, 10.0 ** max(math.floor(math.log10(data.min())), -12))
        high = max(high, 10.0 ** min(math.ceil(math.log10(data.max()) + room), 6))
    return low, high
