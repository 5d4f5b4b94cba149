"""Init ablation (not a paper figure): on each FCN cell of the peers block, every optimizer's final test
accuracy from its own init and from the other one (AGD from PyTorch's default init, every other optimizer from
AGD's orthogonal init, the very weights AGD's run of that seed starts from), one point per evaluation seed and a
bar at their mean: how much of each optimizer's gap to AGD is the init."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from agd.figures.peers import optimizers_in
from agd.figures.style import OPTIMIZER_COLORS, OPTIMIZER_LABELS, figure, footer, mark_not_run

TITLE = ("Init ablation on the peers' FCN cells: final test accuracy of every optimizer from its own init (filled, "
         "left) and from the other (open, right): AGD from PyTorch's default init, every other optimizer from AGD's "
         "orthogonal init with singular values sqrt(d_out/d_in), the very weights AGD's run of the same seed starts "
         "from. One point per evaluation seed, a bar at their mean; a tuned optimizer runs at the rate its study "
         "chose from its own init. Where the open points rise to AGD's, the gap was the init's.")


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    present = data[data["final_test_acc"].notna()] if not data.empty else data
    cells = list(dict.fromkeys(present["cell"])) if not present.empty else []
    if not cells:
        fig, axes = figure(380, 220, 1, 1, layout="constrained")
        mark_not_run(axes[0, 0], "not run: no init-ablation runs yet")
        footer(fig, data, context)
        return fig
    fig, axes = figure(130 * len(cells) + 40, 200, 1, len(cells), layout="constrained", sharey=True)
    names = optimizers_in(present)
    for column, cell in enumerate(cells):
        ax = axes[0, column]
        mine = present[present["cell"] == cell]
        for x, optimizer in enumerate(names):
            color = OPTIMIZER_COLORS[optimizer]
            for offset, own in ((-0.17, True), (0.17, False)):
                runs = mine[(mine["optimizer"] == optimizer) & (mine["own_init"] == own)]
                if runs.empty:
                    continue
                accuracy = 100 * runs["final_test_acc"].to_numpy(float)
                ax.scatter(np.full(len(accuracy), x + offset), accuracy, s=7, color=color if own else "none",
                           edgecolors=color, linewidths=0.7, zorder=3)
                ax.hlines(accuracy.mean(), x + offset - 0.12, x + offset + 0.12, color=color, linewidth=1.2)
        ax.set_xticks(range(len(names)), [OPTIMIZER_LABELS[n] for n in names], rotation=60, ha="right", fontsize=5)
        ax.set_ylim(0, 100)
        ax.set_title(cell, fontsize=6)
        ax.set_ylabel("final test accuracy (%)" if column == 0 else "")
    handles = [Line2D([], [], linestyle="none", marker="o", color="0.3", label="own init"),
               Line2D([], [], linestyle="none", marker="o", markerfacecolor="none", color="0.3",
                      label="the other init")]
    fig.legend(handles=handles, loc="outside upper center", ncol=2, fontsize=6)
    footer(fig, data, context)
    return fig
