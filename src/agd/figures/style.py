"""Shared look of the figures: the paper's colours and line styles, sizes, and the notes every figure carries."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STYLE_FILE = Path(__file__).with_name("agd.mplstyle")

OPTIMIZER_COLORS = {"agd": "#2ca02c", "agd-bias": "#2ca02c", "adam": "#ff7f0e", "sgd": "#d62728"}
OPTIMIZER_LABELS = {"agd": "AGD", "agd-bias": "AGD (bias)", "adam": "Adam", "sgd": "SGD"}
ETA_COLOR = "#1f77b4"        # automatic learning rate (tab:blue)
OBJECTIVE_COLOR = "#bcbd22"  # tab:olive
TRAIN_ACC_COLOR = "#17becf"  # tab:cyan
TEST_ACC_COLOR = "#e377c2"   # tab:pink
TEST_DASHES = (0, (1.5, 2.475))          # test curves in the showcase and Fig. 2: dotted
BASELINE_STYLE = {"linestyle": "--", "alpha": 0.5}  # Fig. 1's tuned baseline: faint dashed
BAND_ALPHA = 0.3                          # min-max bands
MISSING = ("missing", "not_run")
POINTS_PER_INCH = 72


def figure(width_pt: float, height_pt: float, nrows: int = 1, ncols: int = 1, **kwargs):
    """A figure of the paper's size in points, in the project style; returns (fig, axes array)."""
    plt.style.use(STYLE_FILE)
    return plt.subplots(nrows, ncols, figsize=(width_pt / POINTS_PER_INCH, height_pt / POINTS_PER_INCH),
                        squeeze=False, **kwargs)


def ran(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of runs that exist (completed, diverged or still running)."""
    return rows[~rows["status"].isin(MISSING)]


def epoch_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per-epoch rows of the runs that exist; plot them at x = epoch + 1 so the init pass sits at x = 1."""
    rows = ran(rows)
    return rows[rows["kind"] == "epoch"]


def tuned_lr(tuned: pd.DataFrame, panel: str, optimizer: str, **setting) -> float | None:
    """The learning rate select_tuned picked for a baseline in a panel (None if it has none)."""
    chosen = tuned[(tuned["panel"] == panel) & (tuned["optimizer"] == optimizer)]
    for key, value in setting.items():
        chosen = chosen[chosen[key] == value]
    return None if chosen.empty else float(chosen["lr"].iloc[0])


def not_run_text(panel_rows: pd.DataFrame) -> str | None:
    """Why a panel has nothing to show, or None if it has runs."""
    if panel_rows.empty:
        return "not in this preset"
    if not panel_rows["status"].isin(MISSING).all():
        return None
    if (panel_rows["status"] == "not_run").all():
        if (panel_rows["dataset"] == "imagenet").any():
            return "not run: ImageNet is off\n(set imagenet.enabled: true\nin config.yaml)"
        return "not run (disabled in config.yaml)"
    return f"not run: {panel_rows['run'].nunique()} run(s) missing"


def mark_not_run(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=7, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def missing_note(ax: plt.Axes, panel_rows: pd.DataFrame) -> None:
    """A small note in a panel that shows some runs while others are missing."""
    missing = panel_rows[panel_rows["status"] == "missing"]["run"].nunique()
    if missing:
        ax.text(0.98, 0.02, f"{missing} run(s) missing", ha="right", va="bottom", transform=ax.transAxes,
                fontsize=6, color="0.4")


def provenance(data: pd.DataFrame, context: dict) -> str:
    """What the figure was made from: preset, datasets and epochs."""
    present = ran(data)
    datasets = ", ".join(sorted(present["dataset"].unique())) or "none"
    epochs = ", ".join(str(e) for e in sorted(present["epochs"].unique())) or "-"
    return f"{context['figure']} | preset {context['preset']} | data {datasets} | epochs {epochs}"


def footer(fig: plt.Figure, data: pd.DataFrame, context: dict) -> None:
    """Printed on the figure itself, so a quick-preset figure is never taken for the paper's."""
    fig.text(0.5, -0.01, provenance(data, context), ha="center", va="top", fontsize=6, color="0.35")


def caption(title: str, data: pd.DataFrame, context: dict) -> str:
    """The caption file's text: the paper's caption, then what this rendering was made from."""
    notes = "".join(f" {note}." for note in context.get("notes", []))
    return f"{title}\n\n{provenance(data, context)}.{notes}\n"
