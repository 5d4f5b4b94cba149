"""Fig. 4 (arXiv Fig. 7, plot4): AGD on a four-layer FCN at four mini-batch sizes, against iterations.

One panel per batch size. Left axis: train and test accuracy; right axis (twin): the objective and AGD's
automatic learning rate (mean line, min-max band from the first epoch row on). Metrics come from every iteration
of the first epoch (`kind == "step"` rows) and then from each epoch (`kind == "epoch"` rows from epoch 1 on),
all plotted against the iterations so far.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from agd.figures.style import (
    NOTE_SIZE,
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
    ran,
    values,
)

TITLE = ("Benchmarking AGD at varying mini-batch size: a four-layer fully-connected network trained by AGD with "
         "mini-batch sizes 32, 128, 1024 and 4096. Accuracy is on the left axis, the objective and the automatic "
         "learning rate (mean, with the minimum and maximum of each epoch as a band) on the right. Metrics were "
         "computed every iteration during the first epoch and once per epoch from thereon, which explains the "
         "kinks visible in the curves.")

WIDTH_PT, HEIGHT_PT = 452.2, 161.4
RIGHT_YLIM = (1e-2, 1e1)  # the paper's range for objective & learning rate, widened when the data leave it


def selected_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Epoch and step rows of the runs aggregation selected."""
    rows = ran(rows)
    return rows[rows["selected"].astype(bool)]


def curve(run_rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One run's points in plotting order, and its epoch rows (for the eta band): the per-iteration rows of the
    first epoch, then the epoch rows from epoch 1 on; x is the `step` column (iterations so far)."""
    epochs = run_rows[run_rows["kind"] == "epoch"].sort_values("epoch")
    epochs = epochs[epochs["epoch"] >= 1]
    steps = run_rows[run_rows["kind"] == "step"].sort_values("step")
    if not epochs.empty:  # per-iteration logging beyond the first epoch would run backwards in x
        steps = steps[steps["step"] <= epochs["step"].iloc[0]]
    return pd.concat([steps, epochs]), epochs


def draw(ax: plt.Axes, twin: plt.Axes, panel_rows: pd.DataFrame) -> list[np.ndarray]:
    """A panel's runs; returns the right-axis values drawn, for its limits."""
    drawn = []
    for _, run_rows in selected_rows(panel_rows).groupby("run", sort=False):
        points, epochs = curve(run_rows)
        x = values(points, "step")
        ax.plot(x, 100 * values(points, "train_acc"), color=TRAIN_ACC_COLOR)
        ax.plot(x, 100 * values(points, "test_acc"), color=TEST_ACC_COLOR)
        low, high = values(epochs, "eta_min", positive=True), values(epochs, "eta_max", positive=True)
        band = np.isfinite(low) & np.isfinite(high)
        if band.any():
            twin.fill_between(values(epochs, "step"), low, high, where=band, color=ETA_COLOR, alpha=BAND_ALPHA,
                              linewidth=1)
        objective, eta = values(points, "train_loss", positive=True), values(points, "eta_mean", positive=True)
        twin.plot(x, objective, color=OBJECTIVE_COLOR)
        twin.plot(x, eta, color=ETA_COLOR)
        drawn += [objective, eta, low[band], high[band]]
    return drawn


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    sizes = sorted(pd.to_numeric(data["batch_size"], errors="coerce").dropna().unique())
    fig, axes = figure(WIDTH_PT, HEIGHT_PT, 1, max(len(sizes), 1), layout="constrained")
    axes = list(axes[0])
    if not sizes:
        mark_not_run(axes[0], not_run_text(data))
    twins, drawn, x_max = [], [], 10.0
    for ax, size in zip(axes, sizes):
        panel_rows = data[pd.to_numeric(data["batch_size"], errors="coerce") == size]
        ax.set_title(f"batch size {int(size)}")
        twin = ax.twinx()
        reason = not_run_text(panel_rows)
        if reason:
            mark_not_run(ax, reason)
            ax.texts[-1].set_fontsize(NOTE_SIZE + 0.5)  # fit the message in a quarter of the width
            twin.set_yticks([])
            continue
        twins.append((ax, twin))
        drawn += draw(ax, twin, panel_rows)
        missing_note(ax, panel_rows)
        steps = values(selected_rows(panel_rows), "step")
        if np.isfinite(steps).any():
            x_max = max(x_max, np.nanmax(steps))
    y_low, y_high = log_limits(drawn, RIGHT_YLIM)
    for i, (ax, twin) in enumerate(twins):
        ax.set_xscale("log")
        ax.set_xlim(1, x_max)
        ax.set_ylim(0, 100)
        ax.set_xlabel("iterations")
        twin.set_yscale("log")
        twin.set_ylim(y_low, y_high)
        # every panel has the same y ranges: accuracy labels on the first panel, the log axis on the last
        if i == 0:
            ax.set_ylabel("accuracy")
        else:
            ax.tick_params(labelleft=False)
        if i == len(twins) - 1:
            twin.set_ylabel("objective & learning rate")
        else:
            twin.tick_params(which="both", labelright=False)
    fig.legend(metric_legend_handles(), METRIC_LEGEND, loc="outside upper center", ncol=len(METRIC_LEGEND))
    footer(fig, data, context)
    return fig
