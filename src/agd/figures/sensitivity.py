"""Sensitivity (not a paper figure; DeepOBS's tunability plot, extended): final test accuracy against each
optimizer's one scale knob, as a multiple of its default, over decades either side: the learning rate of Adam,
SGD and Muon, the rate multiplier of Prodigy, D-Adaptation and DoG, Schedule-Free's rate, AGD's gain."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from agd.figures.peers import line_width, optimizers_in
from agd.figures.style import OPTIMIZER_COLORS, OPTIMIZER_LABELS, figure, footer, mark_not_run, ran
from agd.optim import registry

TITLE = ("Sensitivity to the one scale knob every optimizer has, as a multiple of its default (the dotted line): "
         "final test accuracy on one cell and the tuning seed. A flat curve is what a learning-rate-free method "
         "promises. The knob is the learning rate of Adam, SGD and Muon (their tuning study's grid, extensions "
         "included), Prodigy's d_coef, the rate multiplier of D-Adaptation and DoG, Schedule-Free AdamW's rate and "
         "AGD's gain; a run that diverged is drawn as a cross at 0%, its accuracy meaningless.")


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    fig, axes = figure(380, 220, 1, 1, layout="constrained")
    ax = axes[0, 0]
    present = ran(data)
    if present.empty:
        mark_not_run(ax, "not run: no sensitivity runs yet")
        footer(fig, data, context)
        return fig
    for optimizer in optimizers_in(present):
        mine = present[present["optimizer"] == optimizer].sort_values("multiplier")
        entry = registry.get(optimizer)
        diverged = mine["status"] == "diverged"
        accuracy = np.where(diverged, np.nan, 100 * mine["final_test_acc"].to_numpy(float))
        ax.plot(mine["multiplier"], accuracy, marker="o", markersize=2.5, color=OPTIMIZER_COLORS[optimizer],
                linewidth=line_width(optimizer), label=f"{OPTIMIZER_LABELS[optimizer]} ({entry.knob})")
        ax.plot(mine.loc[diverged, "multiplier"], np.zeros(int(diverged.sum())), linestyle="none", marker="x",
                markersize=3.5, color=OPTIMIZER_COLORS[optimizer])
    ax.axvline(1.0, color="0.5", linestyle=":", linewidth=0.8)
    ax.set_xscale("log")
    low, high = np.nanmin(present["multiplier"]), np.nanmax(present["multiplier"])
    ax.set_xlim(low / 1.5, high * 1.5)
    ax.set_ylim(0, 100)
    ax.set_xlabel("knob / its default")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_title(f"cell {present['panel'].iloc[0]}, seed {int(present['seed'].iloc[0])}", fontsize=7)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    footer(fig, data, context)
    return fig
