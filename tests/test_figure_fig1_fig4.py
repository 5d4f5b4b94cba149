"""Fig. 1 and Fig. 4 draw the paper's panels from small hand-made result tables."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from agd.figures import fig1, fig4
from agd.tables.selection import annotate

METRICS = ["kind", "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "eta_mean", "eta_min",
           "eta_max", "update_mean", "update_min", "update_max", "lr.1", "time_s"]
DECADES = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
# A hand-made tuned table names each rate by panel and optimizer (annotate matches the setting columns it has).
TUNED_COLUMNS = ["figure", "panel", "optimizer", "lr", "rule", "score", "candidates"]

PAPER_LEGEND = ["automatic learning rate", "objective", "train accuracy", "test accuracy"]


# The role config.yaml gives each panel these tables name (a panel without one is drawn after them).
ROLES = {("fig1", "fcn"): "fcn", ("fig1", "resnet18"): "resnet18", ("fig1", "vgg16"): "vgg16",
         ("fig1", "imagenet"): "imagenet", ("fig4", "batch_size"): "batch_sizes"}


def run_rows(figure, panel, optimizer, lr=np.nan, status="completed", epochs=4, dataset="mnist5k", arch="fcn",
             batch_size=128, steps_per_epoch=8, log_steps=False, skill=0.5, diverge_at=None):
    """One run as in results/<figure>.csv: epoch 0 at init, then `epochs` epochs (and, with log_steps, a row after
    each iteration of the first epoch); a single NaN row for a missing/not_run run; NaN/inf from `diverge_at` on."""
    tag = optimizer if np.isnan(lr) else f"{optimizer}-lr{lr:.0e}"
    run = dict(figure=figure, panel=panel, panel_role=ROLES.get((figure, panel)),
               run=f"{arch}-{dataset}/bs{batch_size}/{tag}/seed0", arch=arch,
               dataset=dataset, loss="mse", depth=4, width=64, batch_size=batch_size, optimizer=optimizer, lr=lr,
               seed=0, bias=False, status=status, epochs=epochs)
    if status in ("missing", "not_run"):
        return [{**run, **{m: np.nan for m in METRICS}}]

    def metrics(kind, epoch, step, progress):
        eta = 0.2 / (1 + progress)
        spread = 0.0 if kind == "step" else 0.05
        return {**run, "kind": kind, "epoch": epoch, "step": step, "train_loss": 1.0 - 0.9 * progress,
                "train_acc": 0.1 + 0.9 * progress, "test_loss": 1.0 - 0.8 * progress, "test_acc": 0.1 + 0.7 * progress,
                "eta_mean": eta, "eta_min": eta - spread, "eta_max": eta + spread, "update_mean": 1e-3,
                "update_min": 1e-3, "update_max": 1e-3, "lr.1": lr, "time_s": float(step)}

    rows = [metrics("epoch", 0, 0, 0.0)]
    if log_steps:
        rows += [metrics("step", 1, step, skill * step / (steps_per_epoch * epochs))
                 for step in range(1, steps_per_epoch + 1)]
    rows += [metrics("epoch", epoch, steps_per_epoch * epoch, skill * epoch / epochs) for epoch in range(1, epochs + 1)]
    if diverge_at is not None:
        for row in rows:
            if row["kind"] == "epoch" and row["epoch"] >= diverge_at:
                row.update(train_loss=np.inf, train_acc=np.nan, test_loss=np.nan, test_acc=np.nan, eta_mean=np.nan,
                           eta_min=np.nan, eta_max=np.nan)
    return rows


def frame(*runs):
    return pd.DataFrame([row for rows in runs for row in rows])


def tuned_rows(figure, rates):
    """results/tuned/<figure>.csv with the rate selected for each (panel, optimizer)."""
    return pd.DataFrame([dict(figure=figure, panel=panel, optimizer=opt, lr=lr, rule="final_test_acc", score=0.5,
                              candidates=5) for (panel, opt), lr in rates.items()], columns=TUNED_COLUMNS)


def context(figure, preset="quick"):
    return {"figure": figure, "preset": preset, "description": "test", "notes": []}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


FIG1_ARCHS = {"fcn": ("fcn", "mnist5k"), "resnet18": ("resnet18", "mnist5k"), "vgg16": ("vgg16", "mnist5k")}
FIG1_TUNED = {("fcn", "adam"): 1e-3, ("resnet18", "adam"): 1e-2, ("vgg16", "adam"): 1e-4}


def fig1_data(imagenet_status="not_run", missing=(), diverged=(), drop_panels=(), dataset=None):
    runs = []
    for panel, (arch, data) in FIG1_ARCHS.items():
        if panel in drop_panels:
            continue
        data = dataset or data
        runs.append(run_rows("fig1", panel, "agd", arch=arch, dataset=data, skill=0.9,
                             diverge_at=2 if (panel, "agd") in diverged else None))
        for i, lr in enumerate(DECADES):
            status = "missing" if (panel, lr) in missing else "diverged" if (panel, lr) in diverged else "completed"
            runs.append(run_rows("fig1", panel, "adam", lr, status=status, arch=arch, dataset=data,
                                 skill=0.1 + 0.15 * i, diverge_at=2 if status == "diverged" else None))
    for optimizer, lr in (("agd", np.nan), ("sgd", 0.1)):
        runs.append(run_rows("fig1", "imagenet", optimizer, lr, status=imagenet_status, arch="resnet50",
                             dataset="imagenet", batch_size=1024, skill=0.6 if optimizer == "agd" else 0.7))
    return frame(*runs)


def column(fig, index):
    """The (top, bottom) axes of a Fig. 1 column."""
    axes = {ax.get_subplotspec().rowspan.start * 10 + ax.get_subplotspec().colspan.start: ax for ax in fig.axes}
    return axes[index], axes[10 + index]


def texts(ax):
    return " ".join(t.get_text() for t in ax.texts)


def dashed(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


def solid(ax):
    return [line for line in ax.get_lines() if line.get_linestyle() == "-"]


def test_fig1_renders_the_papers_layout(tmp_path):
    fig = fig1.plot(annotate(fig1_data(), tuned_rows("fig1", FIG1_TUNED)), context("fig1"))
    assert isinstance(fig, plt.Figure)
    assert len(fig.axes) == 8
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in fig.axes} == {(2, 4)}
    titles = [column(fig, i)[0].get_title() for i in range(4)]
    assert titles == ["FCN mnist5k", "ResNet-18 mnist5k", "VGG-16 mnist5k", "ResNet-50 ImageNet"]
    top, bottom = column(fig, 0)
    assert top.get_yscale() == "log" and top.get_xscale() == "log" and bottom.get_xscale() == "log"
    assert bottom.get_ylim() == (0, 100)
    assert top.get_ylabel() == "objective & learning rate" and bottom.get_ylabel() == "accuracy"
    assert bottom.get_xlabel() == "epochs"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == PAPER_LEGEND
    fig.savefig(tmp_path / "fig1.png")
    assert (tmp_path / "fig1.png").stat().st_size > 0


def test_fig1_titles_name_the_dataset_in_the_data():
    fig = fig1.plot(annotate(fig1_data(dataset="cifar100"), tuned_rows("fig1", FIG1_TUNED)), context("fig1", "paper"))
    assert column(fig, 2)[0].get_title() == "VGG-16 CIFAR-100"
    fig = fig1.plot(annotate(fig1_data(), tuned_rows("fig1", FIG1_TUNED)), context("fig1"))
    assert "CIFAR" not in " ".join(column(fig, i)[0].get_title() for i in range(3))


def test_fig1_imagenet_column_says_not_run():
    fig = fig1.plot(annotate(fig1_data(imagenet_status="not_run"), tuned_rows("fig1", FIG1_TUNED)), context("fig1"))
    top, bottom = column(fig, 3)
    assert "not run" in texts(top) + texts(bottom)
    assert not top.get_lines() and not bottom.get_lines()


def test_fig1_draws_agd_solid_and_only_the_tuned_baseline_dashed():
    data = fig1_data()
    fig = fig1.plot(annotate(data, tuned_rows("fig1", FIG1_TUNED)), context("fig1"))
    for index, panel in enumerate(["fcn", "resnet18", "vgg16"]):
        top, bottom = column(fig, index)
        lr = FIG1_TUNED[(panel, "adam")]
        chosen = data[(data["panel"] == panel) & (data["optimizer"] == "adam") & np.isclose(data["lr"], lr)]
        agd = data[(data["panel"] == panel) & (data["optimizer"] == "agd")]
        assert len(dashed(bottom)) == 2 and len(dashed(top)) == 1  # train/test accuracy; the objective, no eta
        drawn = sorted(tuple(line.get_ydata()) for line in dashed(bottom))
        assert drawn == sorted([tuple(100 * chosen["train_acc"]), tuple(100 * chosen["test_acc"])])
        assert tuple(dashed(top)[0].get_ydata()) == tuple(chosen["train_loss"])
        assert len(solid(top)) == 2 and len(solid(bottom)) == 2  # AGD: eta and objective; train and test
        assert all(tuple(line.get_xdata()) == tuple(agd["epoch"] + 1) for line in solid(top) + solid(bottom))
        assert any(isinstance(c, PolyCollection) for c in top.collections)  # the eta min-max band
        assert f"tuned Adam (lr {fig1.format_lr(lr)})" in texts(top)


def test_fig1_imagenet_uses_its_single_sgd_rate_without_a_tuned_row():
    fig = fig1.plot(annotate(fig1_data(imagenet_status="completed"), tuned_rows("fig1", FIG1_TUNED)), context("fig1"))
    top, bottom = column(fig, 3)
    assert top.get_title() == "ResNet-50 ImageNet"
    assert "not run" not in texts(top)
    assert len(dashed(bottom)) == 2 and "SGD (lr 0.1)" in texts(top) and "tuned" not in texts(top)


def test_fig1_missing_runs_nan_and_empty_panels_do_not_break_it(tmp_path):
    data = fig1_data(missing={("fcn", 1e-5), ("resnet18", 1e-2)}, diverged={("fcn", 1e-1), ("fcn", "agd")},
                     drop_panels={"vgg16"})
    fig = fig1.plot(annotate(data, tuned_rows("fig1", {**FIG1_TUNED, ("fcn", "adam"): 1e-1})), context("fig1"))
    fig.savefig(tmp_path / "fig1.png")
    assert "1 run(s) missing" in texts(column(fig, 0)[1])
    top, bottom = column(fig, 1)  # its tuned baseline is missing: AGD alone, and the panel says so
    assert "tuned Adam (lr 0.01) missing" in texts(top) and "1 run(s) missing" in texts(bottom)
    assert len(solid(bottom)) == 2 and not dashed(bottom)
    assert "not in this preset" in texts(column(fig, 2)[0])
    assert len(fig.axes) == 8


def test_fig1_without_tuned_rates_draws_no_baseline():
    fig = fig1.plot(annotate(fig1_data(), pd.DataFrame(columns=TUNED_COLUMNS)), context("fig1"))
    top, bottom = column(fig, 0)
    assert not dashed(top) and not dashed(bottom)
    assert "no baseline" in texts(top)


BATCH_SIZES = {32: 16, 128: 4, 1024: 2, 4096: 1}  # steps per epoch (a 500-example training set)


def fig4_data(missing=(), diverged=()):
    return frame(*[run_rows("fig4", "batch_size", "agd", batch_size=size, steps_per_epoch=steps, log_steps=True,
                            epochs=6, status="missing" if size in missing else "completed",
                            diverge_at=3 if size in diverged else None)
                   for size, steps in BATCH_SIZES.items()])


def fig4_panels(fig):
    """(main axis, twin axis) per panel, left to right: the twin sits exactly on its panel."""
    main = [ax for ax in fig.axes if ax.get_title()]
    twins = [ax for ax in fig.axes if not ax.get_title()]
    pairs = []
    for ax in sorted(main, key=lambda a: a.get_position().x0):
        twin = [t for t in twins if np.allclose(t.get_position().bounds, ax.get_position().bounds)]
        assert len(twin) == 1
        pairs.append((ax, twin[0]))
    return pairs


def test_fig4_one_panel_per_batch_size_with_a_twin_axis(tmp_path):
    fig = fig4.plot(annotate(fig4_data(), pd.DataFrame(columns=TUNED_COLUMNS)), context("fig4"))
    assert isinstance(fig, plt.Figure)
    panels = fig4_panels(fig)
    assert [ax.get_title() for ax, _ in panels] == [f"batch size {b}" for b in BATCH_SIZES]
    for ax, twin in panels:
        assert ax.get_xscale() == "log" and twin.get_yscale() == "log" and ax.get_ylim() == (0, 100)
        assert ax.get_xlabel() == "iterations"
        assert [line.get_color() for line in ax.get_lines()] == [fig4.TRAIN_ACC_COLOR, fig4.TEST_ACC_COLOR]
        assert {line.get_color() for line in twin.get_lines()} == {fig4.OBJECTIVE_COLOR, fig4.ETA_COLOR}
    assert panels[0][0].get_ylabel() == "accuracy" and panels[-1][1].get_ylabel() == "objective & learning rate"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == PAPER_LEGEND
    fig.savefig(tmp_path / "fig4.png")
    assert (tmp_path / "fig4.png").stat().st_size > 0


def test_fig4_x_is_the_first_epochs_steps_then_the_epoch_rows_steps():
    data = fig4_data()
    fig = fig4.plot(annotate(data, pd.DataFrame(columns=TUNED_COLUMNS)), context("fig4"))
    for (ax, twin), size in zip(fig4_panels(fig), BATCH_SIZES):
        rows = data[data["batch_size"] == size]
        steps = rows[rows["kind"] == "step"]
        epochs = rows[(rows["kind"] == "epoch") & (rows["epoch"] >= 1)]
        expected = list(steps["step"]) + list(epochs["step"])
        for line in ax.get_lines() + twin.get_lines():
            assert list(line.get_xdata()) == expected
        train = next(line for line in ax.get_lines() if line.get_color() == fig4.TRAIN_ACC_COLOR)
        assert list(train.get_ydata()) == list(100 * steps["train_acc"]) + list(100 * epochs["train_acc"])
        band = [c for c in twin.collections if isinstance(c, PolyCollection)]
        assert len(band) == 1
        assert band[0].get_paths()[0].vertices[:, 0].min() == BATCH_SIZES[size]  # starts at the first epoch row
        assert ax.get_xlim()[1] == max(data["step"])


def test_fig4_missing_and_diverged_runs(tmp_path):
    data = fig4_data(missing={1024}, diverged={32})
    fig = fig4.plot(annotate(data, pd.DataFrame(columns=TUNED_COLUMNS)), context("fig4"))
    fig.savefig(tmp_path / "fig4.png")
    panels = fig4_panels(fig)
    assert "not run" in texts(panels[2][0]) and not panels[2][0].get_lines()
    assert panels[0][0].get_lines() and panels[1][0].get_lines() and panels[3][0].get_lines()


def test_fig4_nothing_to_show():
    data = frame(run_rows("fig4", "batch_size", "agd", batch_size=32, status="not_run"))
    fig = fig4.plot(annotate(data, pd.DataFrame(columns=TUNED_COLUMNS)), context("fig4"))
    assert "not run" in " ".join(texts(ax) for ax in fig.axes)
    fig = fig4.plot(annotate(data.iloc[:0], pd.DataFrame(columns=TUNED_COLUMNS)), context("fig4"))
    assert "not in this preset" in " ".join(texts(ax) for ax in fig.axes)


@pytest.mark.parametrize("module,data", [(fig1, fig1_data), (fig4, fig4_data)])
def test_footer_names_preset_and_dataset(module, data):
    fig = module.plot(annotate(data(), tuned_rows(module.__name__.rsplit(".")[-1], FIG1_TUNED)), context(module.__name__.rsplit(".")[-1]))
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "preset quick" in footer and "mnist5k" in footer
