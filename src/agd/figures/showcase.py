"""The showcase figure (arXiv Fig. 1): accuracy of AGD against Adam and SGD on an FCN, a ResNet-18
learning-rate sweep, and ResNet-50 on ImageNet. Solid = train accuracy, dotted = test accuracy."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from agd.data.catalog import LABELS as DATASET_LABELS
from agd.figures.style import (OPTIMIZER_COLORS, OPTIMIZER_LABELS, TEST_DASHES, epoch_rows, figure, footer,
                               mark_not_run, missing_note, not_run_text, panel, shown)
from agd.models.catalog import LABELS as ARCH_LABELS
from agd.optim import registry
from agd.plan import roles

TITLE = ("AGD against Adam and SGD without tuning. Left: train and test accuracy on a 32-layer FCN, Adam and SGD at "
         "their default learning rates (0.001 and 0.1). Middle: final accuracy of Adam and SGD on ResNet-18 over a "
         "grid of learning rates, AGD's as horizontal lines. Right: ResNet-50 on ImageNet, AGD against SGD at 0.1. "
         "Solid lines are train accuracy, dotted lines test accuracy; the networks are unregularised, with biases "
         "and affine parameters disabled.")

ROLES = roles.roles_of("showcase")  # its panels, left to right
PAPER_ARCH = {"default_rates": "fcn", "lr_sweep": "resnet18", "imagenet": "resnet50"}
EPOCH_XMAX = {"default_rates": 1000, "imagenet": 300}  # the paper clips these axes short of the data's end


def panel_title(role: str, rows: pd.DataFrame) -> str:
    """The paper's title, naming the architecture and dataset actually in the data."""
    arch = rows["arch"].iloc[0] if not rows.empty else PAPER_ARCH[role]
    words = [ARCH_LABELS.get(arch, arch)]
    if not rows.empty:
        words += [DATASET_LABELS.get(d, d) for d in dict.fromkeys(rows["dataset"])]
    elif role == "imagenet":
        words.append(DATASET_LABELS["imagenet"])
    return " ".join(words)


def in_registry_order(rows: pd.DataFrame) -> list[str]:
    present = set(rows["optimizer"])
    return [name for name in registry.REGISTRY if name in present]


def accuracy_pair(ax: plt.Axes, x, train, test, color: str, label: str, **kwargs) -> None:
    """Train accuracy solid, test accuracy dotted, in percent."""
    ax.plot(x, 100 * np.asarray(train, float), color=color, label=f"{label} train", **kwargs)
    ax.plot(x, 100 * np.asarray(test, float), color=color, linestyle=TEST_DASHES, label=f"{label} test", **kwargs)


def epochs_panel(ax: plt.Axes, rows: pd.DataFrame, role: str) -> None:
    """Train and test accuracy against epochs (log x, x = epoch + 1), one colour per optimizer."""
    last = 1.0
    curves = shown(rows)
    for optimizer in in_registry_order(rows):
        for _, curve in curves[curves["optimizer"] == optimizer].groupby("run", sort=False):
            curve = curve.sort_values("epoch")
            x = curve["epoch"] + 1
            accuracy_pair(ax, x, curve["train_acc"], curve["test_acc"], OPTIMIZER_COLORS[optimizer],
                          label=OPTIMIZER_LABELS[optimizer])
            last = max(last, x.max())
    ax.set_xscale("log")
    ax.set_xlim(1, max(min(last, EPOCH_XMAX.get(role, last)), 2))
    ax.set_xlabel("epochs")


def sweep_panel(ax: plt.Axes, rows: pd.DataFrame) -> None:
    """Final train and test accuracy of each optimizer that takes a learning rate against it; those that take
    none (AGD) as horizontal lines."""
    finals = rows[rows["final"].astype(bool)]
    rates = []
    for optimizer in [name for name in in_registry_order(rows) if registry.get(name).tuned]:
        points = finals[finals["optimizer"] == optimizer].groupby("lr")[["train_acc", "test_acc"]].mean()
        if points.empty:
            continue
        accuracy_pair(ax, points.index, points["train_acc"], points["test_acc"], OPTIMIZER_COLORS[optimizer],
                      marker="o", markersize=2, label=OPTIMIZER_LABELS[optimizer])
        rates.extend(points.index)
    for optimizer in [name for name in in_registry_order(rows) if not registry.get(name).tuned]:
        mine = finals[finals["optimizer"] == optimizer]
        color, label = OPTIMIZER_COLORS[optimizer], OPTIMIZER_LABELS[optimizer]
        if not mine.empty:
            ax.axhline(100 * mine["train_acc"].mean(), color=color, label=f"{label} train")
            ax.axhline(100 * mine["test_acc"].mean(), color=color, linestyle=TEST_DASHES, label=f"{label} test")
    ax.set_xscale("log")
    if rates:
        low, high = min(rates), max(rates)
        ax.set_xlim((low, high) if high > low else (low / 10, high * 10))
    ax.set_xlabel("learning rate")


def plot(data: pd.DataFrame, context: dict) -> plt.Figure:
    fig, axes = figure(462.6, 189.4, 1, 3)
    for ax, role in zip(axes.flat, ROLES):
        rows = panel(data, role)
        ax.set_title(panel_title(role, rows))
        reason = not_run_text(rows)
        if reason is None and epoch_rows(rows).empty:
            reason = "no epochs logged yet"
        if reason:
            mark_not_run(ax, reason)
            continue
        if role == "lr_sweep":
            sweep_panel(ax, rows)
        else:
            epochs_panel(ax, rows, role)
        missing_note(ax, rows)
        ax.set_ylim(0, 100)
    axes[0, 0].set_ylabel("accuracy (%)")
    # The paper's legend order: the baselines first, AGD last.
    handles = [Line2D([], [], color=OPTIMIZER_COLORS[o], label=OPTIMIZER_LABELS[o])
               for o in reversed(in_registry_order(data))]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    footer(fig, data, context)
    return fig
