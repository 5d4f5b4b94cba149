"""Transformers (not a paper figure): a GPT trained with AGD against nanoGPT's AdamW, one column per panel.

Top: validation loss against iterations (train loss faint), with the unigram entropy of the validation
text, the loss of the best predictor that ignores context. Bottom: AGD's automatic learning rate eta
(mean over each logging interval, min-max band) and AdamW's scheduled rate, on one log axis.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from agd.figures.style import (BAND_ALPHA, ETA_COLOR, OPTIMIZER_COLORS, OPTIMIZER_LABELS, figure, footer,
                               mark_not_run, missing_note, not_run_text, ran, values)
from agd.optim import registry

TITLE = ("Beyond the paper: a GPT trained without a learning rate. AGD's transformer variant (orthogonal "
         "init with per-role singular values, LayerNorms frozen) against AdamW with nanoGPT's warmup and cosine "
         "schedule. Top: validation loss (train loss faint) and the unigram entropy of the validation text. "
         "Bottom: AGD's automatic learning rate eta (interval mean, min-max band) and AdamW's scheduled rate.")

OPTIMIZERS = registry.names(registry.LM)
ETA_SHOWN = [name for name in OPTIMIZERS if registry.is_agd(name)]              # eta: AGD's automatic rate
SCHEDULED = [name for name in OPTIMIZERS if registry.get(name).scheduled]       # the rate the job scheduled
ENTROPY_COLOR = "0.45"


def model_title(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    name = r["text"] if r["panel"] == r["text"] else f"{r['panel']}: {r['text']}"
    return f"{name}, {int(r['n_layer'])} layers x {int(r['n_embd'])}, block {int(r['block_size'])}"


def plot_losses(ax: plt.Axes, rows: pd.DataFrame) -> None:
    for optimizer in OPTIMIZERS:
        for _, run in ran(rows[rows["optimizer"] == optimizer]).groupby("run", sort=False):
            run = run.sort_values("iter")
            color = OPTIMIZER_COLORS[optimizer]
            ax.plot(run["iter"], values(run, "val_loss"), color=color)
            ax.plot(run["iter"], values(run, "train_loss"), color=color, alpha=0.35, linewidth=0.8)
    entropy = rows["unigram_entropy"].dropna()
    if not entropy.empty:
        ax.axhline(float(entropy.iloc[0]), color=ENTROPY_COLOR, linestyle="--", linewidth=0.8)
    ax.set_ylabel("loss (nats/token)")
    missing_note(ax, rows)


def plot_rates(ax: plt.Axes, rows: pd.DataFrame) -> None:
    present = ran(rows)
    for _, run in present[present["optimizer"].isin(ETA_SHOWN)].groupby("run", sort=False):
        run = run.sort_values("iter")
        ax.fill_between(run["iter"], values(run, "eta_min", True), values(run, "eta_max", True),
                        color=ETA_COLOR, alpha=BAND_ALPHA, linewidth=0)
        ax.plot(run["iter"], values(run, "eta_mean", True), color=ETA_COLOR)
    for _, run in present[present["optimizer"].isin(SCHEDULED)].groupby("run", sort=False):
        run = run.sort_values("iter")
        ax.plot(run["iter"], values(run, "lr", True), color=OPTIMIZER_COLORS[run["optimizer"].iloc[0]],
                linestyle="--")
    if np.isfinite(values(present, "eta_mean", True)).any() or np.isfinite(values(present, "lr", True)).any():
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("learning rate")


def legend_handles() -> tuple[list, list[str]]:
    handles = [Line2D([], [], color=OPTIMIZER_COLORS[o]) for o in OPTIMIZERS]
    labels = [f"{OPTIMIZER_LABELS[o]} validation loss" for o in OPTIMIZERS]
    handles += [Line2D([], [], color="0.3", alpha=0.35), Line2D([], [], color=ENTROPY_COLOR, linestyle="--"),
                (Patch(facecolor=ETA_COLOR, alpha=BAND_ALPHA, linewidth=0), Line2D([], [], color=ETA_COLOR))]
    labels += ["train loss", "unigram entropy", "AGD eta (automatic)"]
    handles += [Line2D([], [], color=OPTIMIZER_COLORS[o], linestyle="--") for o in SCHEDULED]
    labels += [f"{OPTIMIZER_LABELS[o]} lr (schedule)" for o in SCHEDULED]
    return handles, labels


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    panels = list(dict.fromkeys(data["panel"]))
    fig, axes = figure(240 * len(panels) + 40, 330, 2, len(panels), sharex="col")
    for column, panel in enumerate(panels):
        rows = data[data["panel"] == panel]
        loss_ax, rate_ax = axes[0, column], axes[1, column]
        loss_ax.set_title(model_title(rows), fontsize=7)
        reason = not_run_text(rows)
        if reason:
            mark_not_run(loss_ax, reason)
            mark_not_run(rate_ax, reason)
            continue
        plot_losses(loss_ax, rows)
        plot_rates(rate_ax, rows)
    handles, labels = legend_handles()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.04), ncol=3, fontsize=6, frameon=False)
    fig.tight_layout()
    footer(fig, data, context)
    return fig
