"""The showcase and Fig. 2 modules draw the paper's panels from small hand-made result tables."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from agd.figures import fig2, showcase
from agd.tables.selection import annotate, select_tuned

METRICS = ["kind", "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc", "eta_mean", "eta_min",
           "eta_max", "update_mean", "update_min", "update_max", "lr.1", "time_s"]
SWEEP = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]


# The role config.yaml gives each panel these tables name.
ROLES = {("showcase", "fcn"): "default_rates", ("showcase", "resnet18_lr_sweep"): "lr_sweep",
         ("showcase", "imagenet"): "imagenet", ("fig2", "fcn"): "fcn"}


def run_rows(figure, panel, optimizer, lr=np.nan, status="completed", epochs=4, dataset="mnist5k", arch="fcn",
             skill=0.5):
    """Rows of one run as in results/<figure>.csv: epoch 0 at init, then `epochs` epochs; one NaN row if missing."""
    tag = optimizer if np.isnan(lr) else f"{optimizer}-lr{lr:.0e}"
    run = dict(figure=figure, panel=panel, panel_role=ROLES[figure, panel], run=f"{arch}-{dataset}/{tag}/seed0",
               arch=arch, dataset=dataset, loss="mse", depth=8, width=64, batch_size=128, optimizer=optimizer, lr=lr,
               seed=0, bias=False, status=status, epochs=epochs)
    if status in ("missing", "not_run"):
        return [{**run, **{m: np.nan for m in METRICS}}]
    rows = []
    for epoch in range(epochs + 1):
        progress = skill * epoch / epochs
        update = 0.0 if epoch == 0 else 1e-3 * (1 + epoch)
        rows.append({**run, "kind": "epoch", "epoch": epoch, "step": 32 * epoch, "train_loss": 1.0 - 0.9 * progress,
                     "train_acc": 0.1 + 0.9 * progress, "test_loss": 1.0 - 0.8 * progress,
                     "test_acc": 0.1 + 0.7 * progress, "eta_mean": 0.1, "eta_min": 0.05, "eta_max": 0.2,
                     "update_mean": update, "update_min": update / 2, "update_max": update * 2, "lr.1": lr,
                     "time_s": float(epoch)})
    return rows


def frame(*runs):
    return pd.DataFrame([row for rows in runs for row in rows])


# A hand-made tuned table names each rate by panel and optimizer (annotate matches the setting columns it has).
TUNED_COLUMNS = ["figure", "panel", "optimizer", "lr", "rule", "score", "candidates"]


def tuned_rows(figure, panel, rates):
    """results/tuned/<figure>.csv: the rate selected for each baseline (none when `rates` is empty)."""
    return pd.DataFrame([dict(figure=figure, panel=panel, optimizer=opt, lr=lr, rule="final_test_acc", score=0.5,
                              candidates=5) for opt, lr in rates.items()], columns=TUNED_COLUMNS)


def context(figure):
    return {"figure": figure, "preset": "quick", "description": "test", "notes": []}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def showcase_data(imagenet_status="not_run", sweep_missing=()):
    runs = [run_rows("showcase", "fcn", "agd", skill=0.9), run_rows("showcase", "fcn", "adam", 1e-3, skill=0.0),
            run_rows("showcase", "fcn", "sgd", 0.1, skill=0.0),
            run_rows("showcase", "resnet18_lr_sweep", "agd", arch="resnet18", epochs=2)]
    for optimizer in ("adam", "sgd"):
        for i, lr in enumerate(SWEEP):
            status = "missing" if (optimizer, lr) in sweep_missing else "diverged" if lr == 1.0 else "completed"
            runs.append(run_rows("showcase", "resnet18_lr_sweep", optimizer, lr, status=status, arch="resnet18",
                                 epochs=2, skill=i / len(SWEEP)))
    for optimizer, lr in (("agd", np.nan), ("sgd", 0.1)):
        runs.append(run_rows("showcase", "imagenet", optimizer, lr, status=imagenet_status, dataset="imagenet",
                             arch="resnet50"))
    return frame(*runs)


def fig2_data(missing=()):
    runs = [run_rows("fig2", "fcn", "agd", skill=0.8)]
    for optimizer in ("adam", "sgd"):
        for i, lr in enumerate([1e-5, 1e-4, 1e-3, 1e-2, 1e-1]):
            status = "missing" if (optimizer, lr) in missing else "completed"
            runs.append(run_rows("fig2", "fcn", optimizer, lr, status=status, skill=0.2 + 0.1 * i))
    return frame(*runs)


def visible_panels(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def texts(fig):
    return [t.get_text() for t in fig.texts] + [t.get_text() for ax in fig.axes for t in ax.texts]


def line_labels(ax):
    return [line.get_label() for line in ax.lines]


def test_showcase_renders_three_panels_and_saves(tmp_path):
    data = showcase_data()
    fig = showcase.plot(annotate(data, tuned_rows("showcase", "fcn", {"adam": 1e-3, "sgd": 0.1})), context("showcase"))
    assert isinstance(fig, plt.Figure)
    assert len(visible_panels(fig)) == 3
    fig.savefig(tmp_path / "showcase.png")
    assert (tmp_path / "showcase.png").stat().st_size > 0
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["FCN mnist5k", "ResNet-18 mnist5k", "ResNet-50 ImageNet"]
    assert not any("CIFAR" in title for title in titles)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["SGD", "Adam", "AGD"]
    for ax in fig.axes[:2]:
        assert ax.get_ylim() == (0, 100)
    assert showcase.TITLE


def test_showcase_fcn_panel_plots_accuracy_in_percent_at_epoch_plus_one():
    fig = showcase.plot(annotate(showcase_data(), tuned_rows("showcase", "fcn", {})), context("showcase"))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    agd_train = next(line for line in ax.lines if line.get_label() == "AGD train")
    assert list(agd_train.get_xdata()) == [1, 2, 3, 4, 5]
    assert agd_train.get_ydata()[0] == pytest.approx(10)
    assert agd_train.get_linestyle() == "-"
    agd_test = next(line for line in ax.lines if line.get_label() == "AGD test")
    assert agd_test.get_linestyle() != "-"


def test_showcase_imagenet_not_run_shows_message():
    fig = showcase.plot(annotate(showcase_data(), tuned_rows("showcase", "fcn", {})), context("showcase"))
    imagenet = fig.axes[2]
    assert not imagenet.lines
    assert any(t.get_text().startswith("not run") for t in imagenet.texts)


def test_showcase_imagenet_drawn_when_run():
    fig = showcase.plot(annotate(showcase_data(imagenet_status="completed"), tuned_rows("showcase", "fcn", {})), context("showcase"))
    assert set(line_labels(fig.axes[2])) == {"AGD train", "AGD test", "SGD train", "SGD test"}


def test_sweep_x_data_are_the_learning_rates_and_agd_is_horizontal():
    fig = showcase.plot(annotate(showcase_data(), tuned_rows("showcase", "fcn", {})), context("showcase"))
    sweep = fig.axes[1]
    assert sweep.get_xscale() == "log"
    for label in ("Adam train", "Adam test", "SGD train", "SGD test"):
        line = next(line for line in sweep.lines if line.get_label() == label)
        assert np.allclose(line.get_xdata(), SWEEP)
    adam_test = next(line for line in sweep.lines if line.get_label() == "Adam test")
    assert adam_test.get_ydata()[-1] == pytest.approx(100 * (0.1 + 0.7 * 5 / 6))  # the last epoch's value
    agd = next(line for line in sweep.lines if line.get_label() == "AGD test")
    assert len(set(agd.get_ydata())) == 1


def test_showcase_missing_sweep_runs_are_left_out_and_noted():
    fig = showcase.plot(annotate(showcase_data(sweep_missing={("adam", 1e-3), ("sgd", 1e-5)}), tuned_rows("showcase", "fcn", {})), context("showcase"))
    sweep = fig.axes[1]
    adam = next(line for line in sweep.lines if line.get_label() == "Adam train")
    assert np.allclose(adam.get_xdata(), [lr for lr in SWEEP if lr != 1e-3])
    assert any("2 run(s) missing" in t.get_text() for t in sweep.texts)


def test_showcase_survives_panels_without_rows():
    data = showcase_data()
    fig = showcase.plot(annotate(data[data["panel"] == "fcn"], tuned_rows("showcase", "fcn", {})), context("showcase"))
    assert len(visible_panels(fig)) == 3
    assert any("not in this preset" in t.get_text() for t in fig.axes[1].texts)


def test_fig2_draws_the_tuned_baselines_only(tmp_path):
    fig = fig2.plot(annotate(fig2_data(), tuned_rows("fig2", "fcn", {"adam": 1e-4, "sgd": 1e-1})), context("fig2"))
    assert isinstance(fig, plt.Figure)
    assert len(visible_panels(fig)) == 3
    fig.savefig(tmp_path / "fig2.png")
    objective, accuracy, update = fig.axes
    assert line_labels(update) == ["AGD", "Adam (lr 1e-4)", "SGD (lr 1e-1)"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["AGD", "Adam (lr 1e-4)", "SGD (lr 1e-1)"]
    assert len(accuracy.lines) == 6 and len(objective.lines) == 6
    # Adam at 1e-4 has skill 0.3: its final train accuracy is 10 + 90 * 0.3 %
    adam_train = next(line for line in accuracy.lines if line.get_label() == "Adam (lr 1e-4) train")
    assert adam_train.get_ydata()[-1] == pytest.approx(100 * (0.1 + 0.9 * 0.3))
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
    assert objective.get_yscale() == "log" and update.get_yscale() == "log"
    assert accuracy.get_ylim() == (0, 100)


def test_fig2_update_size_at_epoch_without_the_init_row():
    fig = fig2.plot(annotate(fig2_data(), tuned_rows("fig2", "fcn", {"adam": 1e-4, "sgd": 1e-1})), context("fig2"))
    objective, _, update = fig.axes
    agd = update.lines[0]
    assert list(agd.get_xdata()) == [1, 2, 3, 4]
    assert (np.asarray(agd.get_ydata()) > 0).all()
    assert list(objective.lines[0].get_xdata()) == [1, 2, 3, 4, 5]
    assert len(update.collections) == 3  # one min-max band per optimizer


def test_fig2_with_the_tuning_rule_draws_best_final_test_accuracy():
    data = fig2_data()
    fig = fig2.plot(annotate(data, select_tuned(data, "final_test_acc")), context("fig2"))
    assert line_labels(fig.axes[2]) == ["AGD", "Adam (lr 1e-1)", "SGD (lr 1e-1)"]


def test_fig2_missing_run_is_never_selected_and_is_noted():
    data = fig2_data(missing={("adam", 1e-4)})
    tuned = select_tuned(data, "final_test_acc")  # Adam's grid: its best run that ran
    tuned.loc[tuned["optimizer"] == "sgd", "lr"] = 1e-2
    fig = fig2.plot(annotate(data, tuned), context("fig2"))
    assert line_labels(fig.axes[2]) == ["AGD", "Adam (lr 1e-1)", "SGD (lr 1e-2)"]
    assert any("1 run(s) missing" in text for text in texts(fig))


def test_fig2_not_run_and_empty_panels_do_not_crash():
    not_run = frame(*[run_rows("fig2", "fcn", o, lr, status="not_run") for o, lr in (("agd", np.nan),
                                                                                    ("adam", 1e-4))])
    fig = fig2.plot(annotate(not_run, tuned_rows("fig2", "fcn", {})), context("fig2"))
    assert all(not ax.lines for ax in fig.axes)
    assert all(any(t.get_text().startswith("not run") for t in ax.texts) for ax in fig.axes)
    empty = fig2.plot(annotate(not_run.iloc[:0], tuned_rows("fig2", "fcn", {})), context("fig2"))
    assert len(visible_panels(empty)) == 3


@pytest.mark.parametrize("module, data", [(showcase, showcase_data), (fig2, fig2_data)])
def test_footer_names_preset_and_dataset(module, data):
    name = module.__name__.rsplit(".", 1)[-1]
    fig = module.plot(annotate(data(), tuned_rows(name, "fcn", {})), context(name))
    footer = " ".join(t.get_text() for t in fig.texts)
    assert "preset quick" in footer and "mnist5k" in footer
