"""A first look at any figure: test accuracy against epochs, one panel per config panel."""

import math

import matplotlib.pyplot as plt
import pandas as pd

from agd.figures.style import MISSING, OPTIMIZER_COLORS, footer, not_run_text


def shown_runs(panel_rows: pd.DataFrame, tuned: pd.DataFrame) -> pd.DataFrame:
    """AGD runs, and for each baseline the tuned rate where one was selected (else all of its rates)."""
    keep = panel_rows["optimizer"].str.startswith("agd")
    for optimizer in ("adam", "sgd"):
        rows = panel_rows["optimizer"] == optimizer
        chosen = tuned[(tuned["panel"] == panel_rows["panel"].iloc[0]) & (tuned["optimizer"] == optimizer)]
        keep |= rows & (panel_rows["lr"].isin(chosen["lr"]) if not chosen.empty else rows)
    return panel_rows[keep]


def plot(data: pd.DataFrame, tuned: pd.DataFrame, context: dict) -> plt.Figure:
    panels = list(dict.fromkeys(data["panel"]))
    columns = min(len(panels), 4)
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        panel_rows = data[data["panel"] == panel]
        ax.set_title(panel, fontsize=9)
        reason = not_run_text(panel_rows)
        if reason:
            ax.text(0.5, 0.5, reason, ha="center", va="center", transform=ax.transAxes, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        ran = shown_runs(panel_rows[~panel_rows["status"].isin(MISSING)], tuned)
        for run, curve in ran[ran["kind"] == "epoch"].groupby("run", sort=False):
            first = curve.iloc[0]
            label = first["optimizer"] if pd.isna(first["lr"]) else f"{first['optimizer']} {first['lr']:g}"
            ax.plot(curve["epoch"] + 1, 100 * curve["test_acc"], color=OPTIMIZER_COLORS[first["optimizer"]],
                    lw=1, label=label)
        missing = panel_rows[panel_rows["status"] == "missing"]["run"].nunique()
        if missing:
            ax.text(0.02, 0.02, f"{missing} run(s) missing", transform=ax.transAxes, fontsize=7, color="0.4")
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_xlabel("epochs")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(fontsize=6)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(f"{context['figure']} ({context['preset']} preset)", fontsize=10)
    footer(fig, data, context)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig
