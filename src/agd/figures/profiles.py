"""Performance profiles (not a paper figure; AlgoPerf's), one small panel per optimizer so that none hides
another: the share of the cells it trains on which its time to reach the cell's target validation accuracy (a GPT
cell: validation loss) is within tau times
the fastest optimizer's, against tau in [1, 4], every other optimizer in grey behind it. Top row: times as
measured; bottom row: a tuned optimizer's time counts every epoch of its tuning study first."""

import math
import textwrap

import matplotlib.pyplot as plt
import pandas as pd

from agd.figures.peers import line_width, optimizers_in
from agd.figures.style import OPTIMIZER_COLORS, OPTIMIZER_LABELS, figure, footer, mark_not_run

TITLE = ("Performance profiles over the peers' cells, AlgoPerf style, one panel per optimizer: the share of the cells "
         "it trains on which it reaches the cell's target validation accuracy (the tuned Adam's median best; on "
         "the GPT cell, the validation loss of nanoGPT's tuned AdamW) within tau times the epochs (iterations) of "
         "the fastest optimizer on that cell; a cell it never reaches counts as never; the other "
         "optimizers in grey. B is the area under the profile over tau in [1, 4], divided by 3, with its 95% "
         "bootstrap interval over the evaluation seeds. Top: the time of the evaluation runs alone, as benchmarks "
         "report it. Bottom: tuning counted, a tuned optimizer's time being every epoch of its rate study (grid and "
         "extensions) and then its evaluation run's, an optimizer without a grid its single run's.")

KINDS = (("plain", "as run"), ("tuning_inclusive", "tuning counted"))
TITLE_WIDTH = 20  # characters per line of a panel's title: a long name wraps rather than runs into the next panel


def interval(row: pd.Series) -> str:
    if any(math.isnan(float(row[c])) for c in ("B", "B_low", "B_high")):
        return "B n/a"
    return f"B {row['B']:.2f} [{row['B_low']:.2f}, {row['B_high']:.2f}]"


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    if data.empty:
        fig, axes = figure(380, 220, 1, 1, layout="constrained")
        mark_not_run(axes[0, 0], "not run: no peers' scores yet")
        footer(fig, data, context)
        return fig
    present = optimizers_in(data)
    fig, axes = figure(70 * len(present) + 50, 200, len(KINDS), len(present), layout="constrained", sharex=True,
                       sharey=True)
    cells = int(data["cells"].max())
    for row, (kind, label) in enumerate(KINDS):
        curves = data[data["kind"] == kind]
        for column, optimizer in enumerate(present):
            ax = axes[row, column]
            for other in present:
                if other != optimizer:
                    curve = curves[curves["optimizer"] == other].sort_values("tau")
                    ax.step(curve["tau"], curve["rho"], where="post", color="0.82", linewidth=0.6)
            mine = curves[curves["optimizer"] == optimizer].sort_values("tau")
            if mine.empty:
                continue
            ax.step(mine["tau"], mine["rho"], where="post", color=OPTIMIZER_COLORS[optimizer],
                    linewidth=line_width(optimizer) + 0.5)
            cells_of = f"({int(mine['cells'].iloc[0])}\u00a0cells)"  # one unit: wraps whole
            name = textwrap.fill(f"{OPTIMIZER_LABELS[optimizer]} {cells_of}", TITLE_WIDTH)
            ax.set_title((f"{name}\n" if row == 0 else "") + interval(mine.iloc[0]), fontsize=5.5)
            ax.set_xlim(1, 4)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel("tau" if row == len(KINDS) - 1 else "")
        axes[row, 0].set_ylabel(f"{label}\nshare of its cells (of {cells})", fontsize=6)
    footer(fig, data, context)
    return fig
