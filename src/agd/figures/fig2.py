"""Fig. 2 (arXiv Fig. 5): AGD against tuned Adam and SGD on an FCN: objective, accuracy and relative update
size against epochs. Solid = train, dotted = test; update size is the epoch mean with its min-max band."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from agd.figures.style import (BAND_ALPHA, OPTIMIZER_COLORS, OPTIMIZER_LABELS, TEST_DASHES, epoch_rows, figure,
                               footer, mark_not_run, missing_note, not_run_text, panel, shown)
from agd.optim import registry

TITLE = ("AGD against Adam and SGD on a depth-8 fully-connected network, each baseline's learning rate tuned over a "
         "grid of powers of ten. Left to right: objective, accuracy (solid train, dotted test) and the relative "
         "update size averaged over layers (epoch mean with min-max band); the legend gives the tuned rates.")

ROLE = "fcn"  # the panel it draws (agd.plan.roles)


def lr_text(lr: float) -> str:
    """1e-4 rather than 0.0001 or 1e-04."""
    exponent = math.floor(math.log10(lr))
    return f"{lr / 10 ** exponent:.3g}e{exponent}"


def chosen_run(curves: pd.DataFrame) -> pd.DataFrame:
    """The epoch rows of the optimizer's selected run (its first, should a setting hold several)."""
    first = curves["run"].iloc[0]
    return curves[curves["run"] == first].sort_values("epoch")


def decade_limits(values, low: float, high: float) -> tuple[float, float]:
    """The paper's log limits, widened where the data leave them (by at most three decades each way)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:
        low = min(low, max(values.min() / 1.2, low / 1e3))
        high = max(high, min(values.max() * 1.2, high * 1e3))
    return low, high


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    fig, axes = figure(462.6, 170.8, 1, 3)
    objective, accuracy, update = axes.flat
    rows = panel(data, ROLE)
    curves = shown(rows)
    reason = not_run_text(rows) or ("no epochs logged yet" if epoch_rows(rows).empty else None)
    handles = []
    if reason:
        for ax in axes.flat:
            mark_not_run(ax, reason)
    else:
        losses, updates, last = [], [], 2
        for optimizer in [name for name in registry.REGISTRY if name in set(rows["optimizer"])]:
            mine = curves[curves["optimizer"] == optimizer]
            label = OPTIMIZER_LABELS[optimizer]
            color = OPTIMIZER_COLORS[optimizer]
            if mine.empty:
                handles.append(Line2D([], [], color=color, alpha=0.4, label=f"{label} (not run)"))
                continue
            run = chosen_run(mine)
            if registry.get(optimizer).tuned:
                label = f"{label} (lr {lr_text(run['lr'].iloc[0])})"
            handles.append(Line2D([], [], color=color, label=label))
            x = run["epoch"] + 1
            last = max(last, x.max())
            objective.plot(x, run["train_loss"], color=color, label=f"{label} train")
            objective.plot(x, run["test_loss"], color=color, linestyle=TEST_DASHES, label=f"{label} test")
            accuracy.plot(x, 100 * run["train_acc"], color=color, label=f"{label} train")
            accuracy.plot(x, 100 * run["test_acc"], color=color, linestyle=TEST_DASHES, label=f"{label} test")
            # update size sits at x = epoch: the init pass made no update and drops off the log axis
            sizes = run[run["update_mean"] > 0]
            update.fill_between(sizes["epoch"], sizes["update_min"], sizes["update_max"], color=color,
                                alpha=BAND_ALPHA, linewidth=1)
            update.plot(sizes["epoch"], sizes["update_mean"], color=color, label=label)
            losses += [run["train_loss"], run["test_loss"]]
            updates += [sizes["update_min"], sizes["update_max"]]
        for ax in axes.flat:
            ax.set_xscale("log")
            ax.set_xlim(1, last)
            ax.set_xlabel("epochs")
        objective.set_yscale("log")
        objective.set_ylim(decade_limits(np.concatenate([[]] + losses), 1e-2, 1e0))
        accuracy.set_ylim(0, 100)
        update.set_yscale("log")
        update.set_ylim(decade_limits(np.concatenate([[]] + updates), 1e-4, 1e-1))
        missing_note(accuracy, rows)
    objective.set_ylabel("objective")
    accuracy.set_ylabel("accuracy (%)")
    update.set_ylabel("update size")
    if handles:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    footer(fig, data, context)
    return fig
