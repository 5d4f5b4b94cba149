"""Peers (not a paper figure): per cell, test accuracy and the train objective against epochs for every
optimizer on the evaluation seeds, the mean with the band from the lowest to the highest seed; tuned
baselines at the rate their grid chose on the tuning seed. AGD in the paper's green, drawn last."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from agd.figures.style import (BAND_ALPHA, OPTIMIZER_COLORS, OPTIMIZER_LABELS, epoch_rows, figure, footer,
                               mark_not_run, missing_note, not_run_text, values)
from agd.optim import registry

TITLE = ("AGD beside the learning-rate-free optimizers of today (Prodigy, D-Adaptation Adam, DoG with its iterate "
         "average, Schedule-Free AdamW) at their authors' defaults, and beside Adam, SGD and Muon with their rate "
         "tuned on a grid on a separate seed. Top: test accuracy; bottom: train objective; the mean over the "
         "evaluation seeds with the band between the lowest and highest seed. The dashed line is the cell's "
         "target, the median best test accuracy of the tuned Adam.")

EVALUATION = "evaluation"
AGD_WIDTH = 2.0


def line_width(optimizer: str) -> float:
    """The AGD family drawn thicker than its peers, in every peers figure."""
    return AGD_WIDTH if registry.is_agd(optimizer) else 1.0


def optimizers_in(rows: pd.DataFrame) -> list[str]:
    """The optimizers present, in the registry's order with the AGD family last (drawn on top)."""
    present = set(rows["optimizer"])
    names = [name for name in registry.REGISTRY if name in present]
    return [n for n in names if not registry.is_agd(n)] + [n for n in names if registry.is_agd(n)]


def draw(ax: plt.Axes, rows: pd.DataFrame, column: str, scale: float = 1.0) -> None:
    curves = rows.assign(value=scale * values(rows, column))
    for optimizer in optimizers_in(curves):
        mine = curves[curves["optimizer"] == optimizer]
        sns.lineplot(data=mine, x="epoch", y="value", estimator="mean", errorbar=("pi", 100),
                     color=OPTIMIZER_COLORS[optimizer], err_kws={"alpha": BAND_ALPHA, "linewidth": 0},
                     linewidth=line_width(optimizer), ax=ax, legend=False)


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    rows = data[data["role"] == EVALUATION]
    cells = list(dict.fromkeys(rows["panel"])) or ["(none)"]
    fig, axes = figure(150 * len(cells) + 40, 300, 2, len(cells), layout="constrained")
    for column, cell in enumerate(cells):
        top, bottom = axes[0, column], axes[1, column]
        cell_rows = rows[rows["panel"] == cell]
        first = cell_rows.iloc[0] if not cell_rows.empty else None
        depth = f"depth {int(first['depth'])} " if first is not None and first["arch"] == "fcn" else ""
        top.set_title(f"{cell}: {first['arch']} {depth}on {first['dataset']}" if first is not None else cell,
                      fontsize=7)
        reason = not_run_text(cell_rows)
        if reason:
            mark_not_run(top, reason)
            mark_not_run(bottom, "")
            continue
        epochs = epoch_rows(cell_rows)
        draw(top, epochs, "test_acc", 100.0)
        draw(bottom, epochs, "train_loss")
        target = cell_rows["target"].dropna()
        if not target.empty:
            top.axhline(100 * float(target.iloc[0]), color="0.4", linestyle="--", linewidth=0.8)
        top.set_ylim(0, 100)
        bottom.set_yscale("log")
        top.set_ylabel("test accuracy (%)" if column == 0 else "")
        bottom.set_ylabel("train objective" if column == 0 else "")
        top.set_xlabel("")
        bottom.set_xlabel("epochs")
        missing_note(bottom, cell_rows)
    present = optimizers_in(rows) if not rows.empty else []
    handles = [Line2D([], [], color=OPTIMIZER_COLORS[o], linewidth=line_width(o), label=OPTIMIZER_LABELS[o])
               for o in present]
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 5), fontsize=6)
    footer(fig, data, context)
    return fig
