"""Fig. 3 draws a depth x width grid of AGD runs from a small hand-made result table."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from agd.figures import fig3
from agd.tables.selection import annotate
from agd.figures.style import TEST_ACC_COLOR, TRAIN_ACC_COLOR, not_run_text

METRICS = ["kind", "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "eta_mean", "eta_min",
           "eta_max", "update_mean", "update_min", "update_max", "lr.1", "time_s"]
DEPTHS, WIDTHS = (4, 2), (32, 8, 16)  # deliberately unsorted: the figure sorts them
MISSING_CELL = (4, 16)
EPOCHS = 5

PAPER_LEGEND = ["automatic learning rate", "objective", "train accuracy", "test accuracy"]


def run_rows(depth, width, status="completed", epochs=EPOCHS):
    """Rows of one AGD run as in results/fig3.csv: epoch 0 at init, then `epochs` epochs; one NaN row if missing."""
    run = dict(figure="fig3", panel="grid", panel_role="grid", run=f"fcn-mnist5k-mse/d{depth}-w{width}-bs128/agd/seed0",
               arch="fcn", dataset="mnist5k", loss="mse", depth=depth, width=width, batch_size=128, optimizer="agd",
               lr=np.nan, seed=0, bias=False, status=status, epochs=epochs)
    if status in ("missing", "not_run"):
        return [{**run, **{m: np.nan for m in METRICS}}]
    rows = []
    for epoch in range(epochs + 1):
        progress = epoch / epochs
        eta = 0.1 + 0.05 * progress
        rows.append({**run, "kind": "epoch", "epoch": epoch, "step": 32 * epoch,
                     "train_loss": 1.0 * 10 ** (-2 * progress), "train_acc": 0.1 + 0.85 * progress,
                     "test_loss": 1.0 - 0.5 * progress, "test_acc": 0.1 + 0.6 * progress, "eta_mean": eta,
                     "eta_min": eta / 2, "eta_max": eta * 2, "update_mean": 0.01, "update_min": 0.005,
                     "update_max": 0.02, "lr.1": np.nan, "time_s": float(epoch)})
        if epoch:  # a step row, which the figure must ignore
            rows.append({**rows[-1], "kind": "step", "step": 32 * epoch - 16, "train_acc": 5.0})
    return rows


def grid_data():
    rows = []
    for depth in DEPTHS:
        for width in WIDTHS:
            status = "missing" if (depth, width) == MISSING_CELL else "completed"
            rows += run_rows(depth, width, status)
    return pd.DataFrame(rows)


CONTEXT = {"figure": "fig3", "preset": "quick", "description": "test", "notes": []}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def rendered():
    data = grid_data()
    fig = fig3.plot(annotate(data, pd.DataFrame()), CONTEXT)
    return data, fig


def main_axes(fig):
    """The grid's panels in the order they were made (twins, with their see-through patch, left out)."""
    return [ax for ax in fig.axes if ax.patch.get_visible()]


def twin_of(ax):
    """The log axis twinned with a panel, or None."""
    twins = [other for other in ax.figure.axes
             if other is not ax and not other.patch.get_visible() and other.get_subplotspec() == ax.get_subplotspec()]
    return twins[0] if twins else None


def texts(ax):
    return [" ".join(t.get_text().split()) for t in ax.texts]


def test_title_is_a_caption():
    assert isinstance(fig3.TITLE, str) and "width" in fig3.TITLE and "depth" in fig3.TITLE


def test_renders_and_saves(rendered, tmp_path):
    _, fig = rendered
    assert isinstance(fig, plt.Figure)
    out = tmp_path / "fig3.png"
    fig.savefig(out)
    assert out.stat().st_size > 0
    width, height = fig.get_size_inches() * 72
    assert (width, height) == pytest.approx((463.3, 386.9))


def test_grid_in_sorted_depth_and_width_order(rendered):
    _, fig = rendered
    fig.canvas.draw()
    panels = main_axes(fig)
    assert len(panels) == len(DEPTHS) * len(WIDTHS)
    spec = [(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) for ax in panels]
    assert sorted(spec) == [(i, j) for i in range(len(DEPTHS)) for j in range(len(WIDTHS))]
    by_position = dict(zip(spec, panels))
    assert [by_position[0, j].get_title() for j in range(len(WIDTHS))] == [f"width {w}" for w in sorted(WIDTHS)]
    row_labels = [[t for t in texts(by_position[i, 0]) if t.startswith("depth")] for i in range(len(DEPTHS))]
    assert row_labels == [[f"depth {d}"] for d in sorted(DEPTHS)]


def test_live_panels_have_log_twin_and_shared_limits(rendered):
    data, fig = rendered
    panels = main_axes(fig)
    live = [ax for ax in panels if ax.get_xscale() == "log"]
    assert len(live) == len(DEPTHS) * len(WIDTHS) - 1
    limits = set()
    for ax in live:
        twin = twin_of(ax)
        assert twin is not None and twin.get_yscale() == "log"
        assert ax.get_ylim() == (0, 100)
        assert ax.get_xlim() == pytest.approx((1, EPOCHS + 1))  # from the data, at x = epoch + 1
        limits.add(twin.get_ylim())
        colors = {line.get_color() for line in ax.get_lines()}
        assert {TRAIN_ACC_COLOR, TEST_ACC_COLOR} <= colors
        train = next(line for line in ax.get_lines() if line.get_color() == TRAIN_ACC_COLOR)
        assert train.get_xdata()[0] == 1 and np.nanmax(train.get_ydata()) <= 100  # epochs only, in %
        assert len(twin.get_lines()) == 2 and twin.collections  # eta mean + objective, eta band
    assert len(limits) == 1


def test_outer_labels_only(rendered):
    _, fig = rendered
    by_position = {(ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start): ax
                   for ax in main_axes(fig)}
    last_row, last_column = len(DEPTHS) - 1, len(WIDTHS) - 1
    for (i, j), ax in by_position.items():
        if ax.get_xscale() != "log":
            continue
        assert (ax.get_xlabel() == "epochs") == (i == last_row)
        assert (ax.get_ylabel() == "accuracy") == (j == 0)
        assert ("learning rate" in twin_of(ax).get_ylabel()) == (j == last_column)


def test_missing_cell_says_not_run(rendered):
    data, fig = rendered
    depth, width = MISSING_CELL
    row, column = sorted(DEPTHS).index(depth), sorted(WIDTHS).index(width)
    ax = next(ax for ax in main_axes(fig)
              if (ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start) == (row, column))
    expected = not_run_text(data[(data["depth"] == depth) & (data["width"] == width)])
    assert " ".join(expected.split()) in texts(ax)
    assert ax.get_lines() == [] and twin_of(ax) is None


def test_footer_names_preset_and_dataset(rendered):
    _, fig = rendered
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "quick" in footer and "mnist5k" in footer


def test_legend_in_one_row():
    fig = fig3.plot(annotate(grid_data(), pd.DataFrame()), CONTEXT)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == PAPER_LEGEND
    assert legend._ncols == len(PAPER_LEGEND)


def test_all_missing_still_draws():
    data = pd.DataFrame(run_rows(2, 8, "missing") + run_rows(2, 16, "not_run"))
    fig = fig3.plot(annotate(data, pd.DataFrame()), CONTEXT)
    assert len(main_axes(fig)) == 2
    assert all(ax.get_xscale() == "linear" for ax in main_axes(fig))
