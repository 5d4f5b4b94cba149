"""Shared look of the figures: the paper's colours, and the footer that says what a figure was made from."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

OPTIMIZER_COLORS = {"agd": "tab:green", "agd-bias": "tab:green", "adam": "tab:orange", "sgd": "tab:red"}
MISSING = ("missing", "not_run")


def footer(fig: plt.Figure, data: pd.DataFrame, context: dict) -> None:
    """Dataset, preset and epochs on the figure itself, so a quick-preset figure is never taken for the paper's."""
    ran = data[~data["status"].isin(MISSING)]
    datasets = ", ".join(sorted(ran["dataset"].unique())) or "none"
    epochs = ", ".join(str(e) for e in sorted(ran["epochs"].unique())) or "-"
    fig.text(0.5, 0.005, f"preset {context['preset']} | data {datasets} | epochs {epochs}",
             ha="center", va="bottom", fontsize=7, color="0.35")


def not_run_text(panel_rows: pd.DataFrame) -> str | None:
    """Why a panel has nothing to show, or None if it has runs."""
    if not panel_rows["status"].isin(MISSING).all():
        return None
    if (panel_rows["status"] == "not_run").all():
        if (panel_rows["dataset"] == "imagenet").any():
            return "not run: ImageNet is off\n(set imagenet.enabled: true in config.yaml)"
        return "not run (disabled in config.yaml)"
    return f"not run: {panel_rows['run'].nunique()} run(s) missing"
