"""Peers (not a paper figure): per cell, validation and test accuracy (a GPT cell: loss) and the train objective
against epochs (iterations) for every optimizer on the evaluation seeds, the mean with the band from the lowest to
the highest seed; tuned baselines at the rate their grid chose on the tuning seed. AGD in the paper's green, drawn
last."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from agd.figures.style import (BAND_ALPHA, OPTIMIZER_COLORS, OPTIMIZER_LABELS, epoch_rows, figure, footer,
                               mark_not_run, missing_note, not_run_text, values)
from agd.optim import registry
from agd.plan.peers import JUDGING
from agd.tables.peers import job_of
from agd.tables.selection import is_lm

TITLE = ("AGD beside the learning-rate-free optimizers of today (Prodigy, D-Adaptation Adam, DoG with its iterate "
         "average) and Schedule-Free AdamW in its self-tuning configuration, each as its authors run it, and beside "
         "Adam, SGD and Muon with their rate chosen on the validation split by a study on a separate seed (the grid "
         "extended past any edge); on the GPT cell, nanoGPT's AdamW with its rate chosen the same way, and AGD's "
         "transformer variant. Rows: validation accuracy (the GPT cell: validation loss; the dashed line is the "
         "cell's target, the median best of the tuned Adam, or AdamW), test accuracy (loss; reported, never used to "
         "choose), and the train objective; the mean over the evaluation seeds with the band between the lowest "
         "and highest seed.")

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


ROWS = {
    registry.IMAGE: (("val_acc", "validation accuracy (%)", 100.0, "linear"),
                     ("test_acc", "test accuracy (%)", 100.0, "linear"), ("train_loss", "train objective", 1.0, "log")),
    registry.LM: (("val_loss", "validation loss", 1.0, "linear"), ("test_loss", "test loss", 1.0, "linear"),
                  ("train_loss", "train loss", 1.0, "linear")),
}


def cell_title(cell: str, first) -> str:
    if first is None:
        return cell
    if is_lm(first):
        return f"{cell}: GPT {int(first['n_layer'])} layers width {int(first['n_embd'])} on {first['text']}"
    depth = f"depth {int(first['depth'])} width {int(first['width'])} " if first["arch"] == "fcn" else ""
    return f"{cell}: {first['arch']} {depth}on {first['dataset']}"


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    rows = data[data["role"] == EVALUATION]
    cells = list(dict.fromkeys(rows["panel"])) or ["(none)"]
    fig, axes = figure(120 * len(cells) + 60, 400, 3, len(cells), layout="constrained")
    previous = None
    for column, cell in enumerate(cells):
        cell_rows = rows[rows["panel"] == cell]
        job = job_of(cell_rows)
        axes[0, column].set_title(cell_title(cell, cell_rows.iloc[0] if not cell_rows.empty else None), fontsize=6)
        reason = not_run_text(cell_rows)
        if reason:
            for row in range(len(ROWS[job])):
                mark_not_run(axes[row, column], reason if row == 0 else "")
            continue
        epochs = epoch_rows(cell_rows)
        for row, (metric, label, scale, yscale) in enumerate(ROWS[job]):
            ax = axes[row, column]
            if metric in epochs:
                draw(ax, epochs, metric, scale)
            ax.set_yscale(yscale)
            if scale == 100.0:
                ax.set_ylim(0, 100)
            ax.set_ylabel(label if job != previous else "")
            ax.set_xlabel(f"{JUDGING[job].time_unit}s" if row == len(ROWS[job]) - 1 else "")
        previous = job
        target = cell_rows["target"].dropna()
        if not target.empty:
            axes[0, column].axhline(ROWS[job][0][2] * float(target.iloc[0]), color="0.4", linestyle="--",
                                    linewidth=0.8)
        missing_note(axes[-1, column], cell_rows)
    present = optimizers_in(rows) if not rows.empty else []
    handles = [Line2D([], [], color=OPTIMIZER_COLORS[o], linewidth=line_width(o), label=OPTIMIZER_LABELS[o])
               for o in present]
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncol=min(len(handles), 5), fontsize=6)
    footer(fig, data, context)
    return fig
