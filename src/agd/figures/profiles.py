"""Performance profiles (not a paper figure; AlgoPerf's): for every optimizer, the share of cells on which its time
to reach the cell's target test accuracy is within tau times the fastest optimizer's, against tau in [1, 4]. Its
score B, the area under the curve over [1, 4] divided by 3, is in the legend."""

import matplotlib.pyplot as plt
import pandas as pd

from agd.figures.peers import line_width, optimizers_in
from agd.figures.style import OPTIMIZER_COLORS, OPTIMIZER_LABELS, figure, footer, mark_not_run

TITLE = ("Performance profiles over the peers' cells, AlgoPerf style: the share of cells on which an optimizer "
         "reaches the cell's target test accuracy (the tuned Adam's median best) within tau times the epochs of "
         "the fastest optimizer on that cell; a cell it never reaches counts as never. B is the area under the "
         "profile over tau in [1, 4], divided by 3. A tuned baseline's epochs leave out its tuning grid.")


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    fig, axes = figure(380, 220, 1, 1, layout="constrained")
    ax = axes[0, 0]
    if data.empty:
        mark_not_run(ax, "not run: no peers' scores yet")
        footer(fig, data, context)
        return fig
    for optimizer in optimizers_in(data):
        curve = data[data["optimizer"] == optimizer].sort_values("tau")
        ax.step(curve["tau"], curve["rho"], where="post", color=OPTIMIZER_COLORS[optimizer],
                linewidth=line_width(optimizer),
                label=f"{OPTIMIZER_LABELS[optimizer]} (B = {curve['score'].iloc[0]:.2f})")
    cells = int(data["cells"].max())
    ax.set_xlim(1, 4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau: epochs to the target over the fastest optimizer's")
    ax.set_ylabel(f"share of the {cells} cells")
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    footer(fig, data, context)
    return fig
