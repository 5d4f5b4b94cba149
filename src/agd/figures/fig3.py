"""Fig. 3 (arXiv Fig. 6, plots3_0): AGD on fully-connected networks over a grid of depths and widths.

One small panel per (depth, width): rows are depths, columns are widths, both taken from the data. In each panel,
x = epochs (log, the init pass at x = 1). The left axis shows train (cyan) and test (pink) accuracy, 0-100 %. The
twin right axis (log) shows the objective (olive) and AGD's automatic learning rate (blue mean with the per-epoch
min-max band). Axes are labelled on the outer panels only, and all panels share their limits.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, LogFormatterSciNotation, NullFormatter

from agd.figures.style import (
    BAND_ALPHA,
    ETA_COLOR,
    METRIC_LEGEND,
    OBJECTIVE_COLOR,
    TEST_ACC_COLOR,
    TRAIN_ACC_COLOR,
    figure,
    footer,
    log_limits,
    mark_not_run,
    metric_legend_handles,
    missing_note,
    not_run_text,
    panel,
    shown,
    values,
)

TITLE = ("AGD on fully-connected networks of varying width and depth, square loss, mini-batch size 128. Each panel "
         "shows train and test accuracy (left axis) and the objective and AGD's automatic learning rate, with its "
         "per-epoch minimum and maximum as a band (right axis).")

WIDTH_PT, HEIGHT_PT = 463.3, 386.9
ROLE = "grid"  # the panel it draws (agd.plan.roles); a table without one is drawn whole
OBJECTIVE_YLIM = (1e-5, 1e1)  # the paper's right-axis range, widened by whole decades when the data leave it
TICK_SIZE = 5.5
LABEL_SIZE = 6.5
MAX_LOG_LABELS = 4


def log_ticks(low: float, high: float) -> tuple[list[float], list[float]]:
    """Labelled decades (at most MAX_LOG_LABELS, the top one included) and every decade as a minor tick."""
    top, bottom = round(math.log10(high)), round(math.log10(low))
    stride = max(1, math.ceil((top - bottom) / (MAX_LOG_LABELS - 1)))
    return [10.0 ** e for e in range(top, bottom - 1, -stride)], [10.0 ** e for e in range(bottom, top + 1)]


def number(value) -> str:
    value = float(value)
    return f"{int(value)}" if value.is_integer() else f"{value:g}"


def grid_values(rows: pd.DataFrame, column: str) -> list[float]:
    """The sorted depths or widths present in the data."""
    return sorted(pd.to_numeric(rows[column], errors="coerce").dropna().unique())


def cell(rows: pd.DataFrame, depth: float, width: float) -> pd.DataFrame:
    depths = pd.to_numeric(rows["depth"], errors="coerce")
    widths = pd.to_numeric(rows["width"], errors="coerce")
    return rows[(depths == depth) & (widths == width)]


def draw_cell(ax: plt.Axes, twin: plt.Axes, rows: pd.DataFrame) -> list[np.ndarray]:
    """The epoch curves of a cell's runs at x = epoch + 1; returns the log-axis values drawn, for the limits."""
    drawn = []
    for _, curve in rows.groupby("run", sort=False):
        curve = curve.sort_values("epoch")
        x = values(curve, "epoch") + 1
        mean, low, high = (values(curve, c, positive=True) for c in ("eta_mean", "eta_min", "eta_max"))
        band = np.isfinite(low) & np.isfinite(high)
        if band.any():
            twin.fill_between(x, low, high, where=band, color=ETA_COLOR, alpha=BAND_ALPHA, linewidth=1)
        twin.plot(x, mean, color=ETA_COLOR)
        objective = values(curve, "train_loss", positive=True)
        twin.plot(x, objective, color=OBJECTIVE_COLOR)
        ax.plot(x, 100 * values(curve, "train_acc"), color=TRAIN_ACC_COLOR)
        ax.plot(x, 100 * values(curve, "test_acc"), color=TEST_ACC_COLOR)
        drawn += [mean, low[band], high[band], objective]
    return drawn


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    grid = panel(data, ROLE)
    rows = grid if not grid.empty else data
    depths, widths = grid_values(rows, "depth"), grid_values(rows, "width")
    fig, axes = figure(WIDTH_PT, HEIGHT_PT, max(len(depths), 1), max(len(widths), 1), layout="constrained")
    fig.get_layout_engine().set(w_pad=1 / 72, h_pad=1 / 72, wspace=0.02, hspace=0.02)
    if not depths or not widths:
        mark_not_run(axes[0, 0], not_run_text(rows.iloc[0:0]))
    drawn, live, x_max = [], {}, 2.0
    for i, depth in enumerate(depths):
        for j, width in enumerate(widths):
            ax = axes[i, j]
            cell_rows = cell(rows, depth, width)
            reason = not_run_text(cell_rows)
            if reason:
                mark_not_run(ax, reason.replace(": ", ":\n"))
                continue
            twin = ax.twinx()
            live[i, j] = twin
            runs = shown(cell_rows)
            drawn += draw_cell(ax, twin, runs)
            missing_note(ax, cell_rows)
            epochs = values(runs, "epoch")
            if np.isfinite(epochs).any():
                x_max = max(x_max, float(np.nanmax(epochs)) + 1)
    y_low, y_high = log_limits(drawn, OBJECTIVE_YLIM)
    major, minor = log_ticks(y_low, y_high)
    x_major = [10.0 ** e for e in range(0, math.floor(math.log10(x_max)) + 1)]
    last_row, last_column = len(depths) - 1, len(widths) - 1
    for (i, j), twin in live.items():
        ax = axes[i, j]
        ax.set_xscale("log")
        ax.set_xlim(1, x_max)
        ax.xaxis.set_major_locator(FixedLocator(x_major))  # every decade, as the paper's 10^0 ... 10^3
        ax.xaxis.set_major_formatter(LogFormatterSciNotation())
        ax.set_ylim(0, 100)
        ax.set_yticks([0, 50, 100])
        twin.set_yscale("log")
        twin.set_ylim(y_low, y_high)
        twin.yaxis.set_major_locator(FixedLocator(major))
        twin.yaxis.set_major_formatter(LogFormatterSciNotation())
        twin.yaxis.set_minor_locator(FixedLocator(minor))
        twin.yaxis.set_minor_formatter(NullFormatter())
        for axis in (ax, twin):
            axis.tick_params(which="both", labelsize=TICK_SIZE, length=2, pad=1)
        ax.tick_params(labelleft=j == 0, labelbottom=i == last_row)
        twin.tick_params(labelright=j == last_column)
        if i == last_row:
            ax.set_xlabel("epochs", fontsize=LABEL_SIZE, labelpad=1)
        if j == 0:
            ax.set_ylabel("accuracy", fontsize=LABEL_SIZE, labelpad=1)
        if j == last_column:
            twin.set_ylabel("objective &\nlearning rate", fontsize=LABEL_SIZE, labelpad=1)
    for j, width in enumerate(widths):
        axes[0, j].set_title(f"width {number(width)}", fontsize=LABEL_SIZE + 1, pad=3)
    for i, depth in enumerate(depths):
        ax = axes[i, 0]
        # "depth d" to the left of the accuracy label (or of the panel, when the panel is not run).
        anchor = ax.yaxis.label if (i, 0) in live else ax
        ax.annotate(f"depth {number(depth)}", xy=(0, 0.5), xycoords=anchor, xytext=(-4, 0),
                    textcoords="offset points", rotation=90, ha="right", va="center", fontsize=LABEL_SIZE + 1,
                    annotation_clip=False)
    fig.legend(metric_legend_handles(), METRIC_LEGEND, loc="outside upper center", ncol=len(METRIC_LEGEND))
    footer(fig, data, context)
    return fig
