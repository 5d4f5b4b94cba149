"""Fig. 1 (arXiv Fig. 4, plot1_full): AGD against a tuned baseline on four architectures and datasets.

2 rows x 4 columns, one column per panel. Top: AGD's automatic learning rate (mean with the per-epoch min-max
band) and the objective, log scale; bottom: train and test accuracy. AGD solid, the baseline faint dashed.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import LogLocator

from agd.figures.style import (
    BAND_ALPHA,
    BASELINE_STYLE,
    ETA_COLOR,
    METRIC_LEGEND,
    NOTE_SIZE,
    OBJECTIVE_COLOR,
    OPTIMIZER_LABELS,
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
from agd.data.catalog import LABELS as DATASET_LABELS
from agd.models.catalog import LABELS as ARCH_LABELS
from agd.optim.registry import AGD
from agd.plan import roles

TITLE = ("AGD on four architectures and datasets, one per column, named in its title: an FCN, ResNet-18, VGG-16 and "
         "ResNet-50. AGD (solid) against a baseline (faint dashed): Adam with its learning rate tuned on a grid for "
         "the first three, SGD at learning rate 0.1 for ResNet-50. The top row shows the objective and AGD's "
         "automatic learning rate, with the maximum and minimum learning rate of each epoch as a band around the "
         "mean; the bottom row shows train and test accuracy.")

WIDTH_PT, HEIGHT_PT = 418.2, 224.1
ROLES = roles.roles_of("fig1")  # its columns, in the paper's order; panels without one follow
PAPER_SETTINGS = {"fcn": ("fcn", "cifar10"), "resnet18": ("resnet18", "cifar10"), "vgg16": ("vgg16", "cifar100"),
                  "imagenet": ("resnet50", "imagenet")}
OBJECTIVE_YLIM = (1e-5, 1e1)  # the paper's top-row range, widened when the data leave it


def format_lr(lr: float) -> str:
    if 1e-2 <= lr < 1e3:
        return f"{lr:g}"
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def panel_title(role: str, panel_rows: pd.DataFrame) -> str:
    """The paper's column title, naming the architecture and dataset actually in the data."""
    arch, dataset = PAPER_SETTINGS.get(role, (role, ""))
    if not panel_rows.empty:
        arch, dataset = str(panel_rows["arch"].iloc[0]), str(panel_rows["dataset"].iloc[0])
    return f"{ARCH_LABELS.get(arch, arch)} {DATASET_LABELS.get(dataset, dataset)}".strip()


def columns(data: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(role, its rows) per column: the paper's panels by role, then (name, rows) of any panel without one."""
    others = data[~data[roles.COLUMN].isin(ROLES)] if roles.COLUMN in data else data
    return [(role, panel(data, role)) for role in ROLES] + list(others.groupby("panel", sort=False))


def baseline(panel_rows: pd.DataFrame) -> tuple[str, float, bool] | None:
    """(optimizer, lr, tuned over a grid?) of the panel's dashed baseline: the first optimizer other than
    AGD with a run aggregation selected (its tuned rate, or its only rate)."""
    chosen = panel_rows[(panel_rows["family"] != AGD) & panel_rows["selected"].astype(bool)]
    if chosen.empty:
        return None
    first = chosen.iloc[0]
    return first["optimizer"], float(first["lr"]), int(first["rates"]) > 1


def first_agd(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of the panel's first AGD variant."""
    agd = rows[rows["family"] == AGD]
    return agd[agd["optimizer"] == agd["optimizer"].iloc[0]] if not agd.empty else agd


def draw_run(top: plt.Axes, bottom: plt.Axes, rows: pd.DataFrame, style: dict, eta: bool) -> list[np.ndarray]:
    """One run's epoch curves at x = epoch + 1; returns the log-axis values drawn, for the y limits."""
    drawn = []
    for _, curve in rows.groupby("run", sort=False):
        curve = curve.sort_values("epoch")
        x = values(curve, "epoch") + 1
        if eta:
            mean, low, high = (values(curve, c, positive=True) for c in ("eta_mean", "eta_min", "eta_max"))
            band = np.isfinite(low) & np.isfinite(high)
            if band.any():
                top.fill_between(x, low, high, where=band, color=ETA_COLOR, alpha=BAND_ALPHA, linewidth=1)
            top.plot(x, mean, color=ETA_COLOR, **style)
            drawn += [mean, low[band], high[band]]
        objective = values(curve, "train_loss", positive=True)
        top.plot(x, objective, color=OBJECTIVE_COLOR, **style)
        bottom.plot(x, 100 * values(curve, "train_acc"), color=TRAIN_ACC_COLOR, **style)
        bottom.plot(x, 100 * values(curve, "test_acc"), color=TEST_ACC_COLOR, **style)
        drawn.append(objective)
    return drawn


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    panels = columns(data)
    fig, axes = figure(WIDTH_PT, HEIGHT_PT, 2, len(panels), layout="constrained")
    drawn, drawn_columns, x_max = [], [], 1.0
    for column, (role, panel_rows) in enumerate(panels):
        top, bottom = axes[0, column], axes[1, column]
        top.set_title(panel_title(role, panel_rows))
        reason = not_run_text(panel_rows)
        if reason:
            mark_not_run(top, reason)
            mark_not_run(bottom, "")
            top.texts[-1].set_fontsize(NOTE_SIZE + 0.5)  # fit the message in a quarter of the width
            continue
        drawn_columns.append(column)
        rows = shown(panel_rows)
        drawn += draw_run(top, bottom, first_agd(rows), {}, eta=True)
        chosen = baseline(panel_rows)
        note = "no baseline rate selected"
        if chosen:
            optimizer, lr, grid = chosen
            shown_rows = rows[rows["optimizer"] == optimizer]
            drawn += draw_run(top, bottom, shown_rows, BASELINE_STYLE, eta=False)
            name = OPTIMIZER_LABELS.get(optimizer, optimizer)
            note = f"dashed: {'tuned ' if grid else ''}{name} (lr {format_lr(lr)})"
            if shown_rows.empty:  # nothing dashed to point at
                note = note.removeprefix("dashed: ") + " missing"
        top.text(0.5, 0.97, note, transform=top.transAxes, ha="center", va="top", fontsize=NOTE_SIZE, color="0.3")
        missing_note(bottom, panel_rows)
        epochs = values(rows, "epoch")
        if np.isfinite(epochs).any():
            x_max = max(x_max, np.nanmax(epochs) + 1)
    y_low, y_high = log_limits(drawn, OBJECTIVE_YLIM, room=0.5)
    for column in drawn_columns:  # a not-run column keeps its blank frame
        top, bottom = axes[0, column], axes[1, column]
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_xlim(1, max(x_max, 10.0))  # at least a decade, so that log ticks stay readable
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=12))  # every decade, as the paper: 10^0...10^3
        top.set_yscale("log")
        top.set_ylim(y_low, y_high)
        top.tick_params(labelbottom=False)
        bottom.set_ylim(0, 100)
        bottom.set_xlabel("epochs")
        if column == drawn_columns[0]:
            top.set_ylabel("objective & learning rate")
            bottom.set_ylabel("accuracy")
        else:  # every row shares its y range: tick labels on the left column only
            top.tick_params(labelleft=False)
            bottom.tick_params(labelleft=False)
    fig.get_layout_engine().set(wspace=0.08)
    fig.legend(metric_legend_handles(), METRIC_LEGEND, loc="outside upper center", ncol=len(METRIC_LEGEND))
    footer(fig, data, context)
    return fig
