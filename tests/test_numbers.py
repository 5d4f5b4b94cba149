"""The paper's reported numbers joined with reproduced ones, and the LaTeX made from them."""

import math
from pathlib import Path

import pandas as pd
import pytest

from agd.tables.numbers import numbers_table
from agd.tables.paper import escape, figures_tex, numbers_tex
from agd.tables.selection import annotate

REPO = Path(__file__).parents[1]


def run_rows(figure, role, optimizer, test_accs, lr=None, batch_size=128, width=64, status="completed", run=None):
    """A run's epoch rows in the panel that plays `role` (named after it)."""
    run = run or f"{role}/{optimizer}/{lr}/{batch_size}/{width}"
    return pd.DataFrame([
        dict(figure=figure, panel=role, panel_role=role, run=run, dataset="mnist5k", optimizer=optimizer, lr=lr,
             batch_size=batch_size, width=width, status=status, kind="epoch", epoch=e, test_acc=acc)
        for e, acc in enumerate(test_accs)
    ])


def reported(*rows) -> pd.DataFrame:
    columns = ["id", "figure", "role", "optimizer", "batch_size", "statistic", "reported", "quantity", "source"]
    return pd.DataFrame([dict(zip(columns, r)) for r in rows])


def test_final_best_and_tuned_values_are_joined():
    fig1 = pd.concat([
        run_rows("fig1", "fcn", "agd", [0.1, 0.5, 0.45]),
        run_rows("fig1", "fcn", "adam", [0.1, 0.3, 0.35], lr=1e-3),
        run_rows("fig1", "fcn", "adam", [0.1, 0.6, 0.55], lr=1e-4),
    ])
    tuned = pd.DataFrame([dict(panel="fcn", optimizer="adam", lr=1e-4)])
    table = numbers_table(reported(
        ("a", "fig1", "fcn", "agd", None, "final_test_acc", 52.7, "AGD", "Sec. 3.3"),
        ("b", "fig1", "fcn", "agd", None, "best_test_acc", 52.7, "AGD best", "Sec. 3.3"),
        ("c", "fig1", "fcn", "adam", None, "final_test_acc", 53.5, "tuned Adam", "Sec. 3.3"),
    ), {"fig1": annotate(fig1, tuned)}, "quick").set_index("id")
    assert table.loc["a", "reproduced"] == pytest.approx(45.0)
    assert table.loc["b", "reproduced"] == pytest.approx(50.0)
    assert table.loc["c", "reproduced"] == pytest.approx(55.0)  # the tuned rate, not 1e-3
    assert table.loc["c", "difference"] == pytest.approx(55.0 - 53.5)
    assert (table["preset"] == "quick").all() and (table["dataset"] == "mnist5k").all()


def test_grid_extremes_batch_sizes_and_missing_runs():
    fig3 = pd.concat([run_rows("fig3", "grid", "agd", [0.1, acc], width=w, run=f"w{w}")
                      for w, acc in [(16, 0.40), (32, 0.70), (64, 0.55)]])
    fig4 = pd.concat([run_rows("fig4", "batch_sizes", "agd", [0.1, 0.58], batch_size=128),
                      run_rows("fig4", "batch_sizes", "agd", [math.nan], batch_size=32, status="missing")])
    table = numbers_table(reported(
        ("best", "fig3", "grid", "agd", None, "grid_best_final_test_acc", 63.7, "best", "s"),
        ("worst", "fig3", "grid", "agd", None, "grid_worst_final_test_acc", 42.55, "worst", "s"),
        ("b128", "fig4", "batch_sizes", "agd", 128, "final_test_acc", 58.0, "B=128", "s"),
        ("b32", "fig4", "batch_sizes", "agd", 32, "final_test_acc", 55.0, "B=32", "s"),
        ("imagenet", "showcase", "imagenet", "agd", None, "best_test_acc", 65.5, "ImageNet", "s"),
    ), {name: annotate(rows, pd.DataFrame()) for name, rows in (("fig3", fig3), ("fig4", fig4))}, "quick").set_index("id")
    assert table.loc["best", "reproduced"] == pytest.approx(70.0) and table.loc["best", "run"] == "w32"
    assert table.loc["worst", "reproduced"] == pytest.approx(40.0) and table.loc["worst", "run"] == "w16"
    assert table.loc["b128", "reproduced"] == pytest.approx(58.0) and table.loc["b128", "difference"] == pytest.approx(0, abs=1e-9)
    assert math.isnan(table.loc["b32", "reproduced"]) and "missing" in table.loc["b32", "run"]
    assert math.isnan(table.loc["imagenet", "reproduced"]) and "not in this preset" in table.loc["imagenet", "run"]


def test_every_reported_number_has_a_source_and_a_figure_of_the_paper():
    numbers = pd.read_csv(REPO / "paper/reported_numbers.csv")
    assert numbers["id"].is_unique
    assert numbers["source"].str.contains("arXiv").all()
    assert set(numbers["figure"]) <= {"showcase", "fig1", "fig2", "fig3", "fig4"}
    values = dict(zip(numbers["id"], numbers["reported"]))
    assert values["fig1_resnet18_agd"] == 91.2 and values["fig3_worst"] == 42.55 and values["imagenet_agd"] == 65.5


def test_latex_is_escaped_and_tables_are_complete():
    assert escape("resnet18_lr_sweep 50% & $x") == r"resnet18\_lr\_sweep 50\% \& \$x"
    numbers = pd.DataFrame([dict(quantity="FCN_16", reported=52.7, reproduced=45.0, difference=-7.7, dataset="mnist5k"),
                            dict(quantity="ImageNet", reported=65.5, reproduced=math.nan, difference=math.nan, dataset="")])
    tex = numbers_tex(numbers)
    assert r"FCN\_16 & 52.7 & 45.0 & -7.7 & mnist5k \\" in tex
    assert r"ImageNet & 65.5 & -- & -- & -- \\" in tex
    figures = figures_tex({"fig3": "Grid of depth and width.\n\nfig3 | preset quick | data mnist5k."})
    assert r"\includegraphics[width=\linewidth]{fig3.pdf}" in figures and r"\label{fig:fig3}" in figures


def cifar_number(id_, statistic, reported_value, **setting) -> dict:
    return dict(id=id_, figure=setting.pop("figure", "fig1"), role=setting.pop("role", "fcn"),
                optimizer=setting.pop("optimizer", "agd"), batch_size=setting.pop("batch_size", None),
                statistic=statistic, reported=reported_value, unit=setting.pop("unit", "%"), quantity=id_,
                arch="fcn", dataset="cifar10", depth=16, width=512, epochs=setting.pop("epochs", 2),
                iterations=setting.pop("iterations", None), source="arXiv", note=setting.pop("note", None))


def fcn_rows(dataset, test_accs, optimizer="agd", lr=None, depth=16, width=512, epochs=2, steps_per_epoch=10,
             batch_size=128, role="fcn", figure="fig1"):
    rows = run_rows(figure, role, optimizer, test_accs, lr=lr, batch_size=batch_size, width=width)
    return rows.assign(dataset=dataset, arch="fcn", depth=depth, epochs=epochs,
                       step=[e * steps_per_epoch for e in rows["epoch"]])


def test_difference_only_between_like_settings():
    """A quick-preset MNIST value beside a CIFAR-10 number gets no difference, and says why."""
    figure = pd.concat([fcn_rows("mnist5k", [0.1, 0.9, 0.8]).assign(run="mnist"),
                        fcn_rows("cifar10", [0.1, 0.6, 0.5], width=64, role="resnet18").assign(run="narrow"),
                        fcn_rows("cifar10", [0.1, 0.55, 0.53], role="vgg16").assign(run="same")])
    table = numbers_table(pd.DataFrame([
        cifar_number("unlike", "final_test_acc", 52.7),
        cifar_number("narrow", "final_test_acc", 52.7, role="resnet18"),
        cifar_number("same", "final_test_acc", 52.7, role="vgg16"),
        cifar_number("best", "best_test_acc", 52.7, role="vgg16"),
    ]), {"fig1": annotate(figure, pd.DataFrame())}, "quick").set_index("id")
    assert table.loc["unlike", "reproduced"] == pytest.approx(80.0) and math.isnan(table.loc["unlike", "difference"])
    assert not table.loc["unlike", "comparable"] and table.loc["unlike", "reason"] == "dataset mnist5k, not cifar10"
    assert math.isnan(table.loc["narrow", "difference"]) and "width 64, not 512" in table.loc["narrow", "reason"]
    assert table.loc["same", "comparable"] and table.loc["same", "difference"] == pytest.approx(53.0 - 52.7)
    assert (table.loc["same", "reproduced_final"], table.loc["same", "reproduced_best"]) == pytest.approx((53.0, 55.0))
    assert table.loc["best", "reproduced"] == pytest.approx(55.0)  # the statistic the paper's wording names


def test_a_run_is_read_at_the_papers_length_in_iterations():
    """Fig. 4 at batch 4096: the paper's run ended at 380,965 iterations; a longer run is read up to there."""
    figure = fcn_rows("cifar10", [0.1, 0.5, 0.6, 0.7], epochs=3, steps_per_epoch=100, batch_size=4096,
                      role="batch_sizes", figure="fig4")
    number = cifar_number("b4096", "final_test_acc", 59.8, figure="fig4", role="batch_sizes", batch_size=4096,
                          epochs=None, iterations=250)
    short = cifar_number("b4096_long", "final_test_acc", 59.8, figure="fig4", role="batch_sizes", batch_size=4096,
                         epochs=None, iterations=1000)
    table = numbers_table(pd.DataFrame([number, short]), {"fig4": annotate(figure, pd.DataFrame())},
                          "paper").set_index("id")
    assert table.loc["b4096", "reproduced"] == pytest.approx(60.0)  # epoch 2 (step 200), not epoch 3 (step 300)
    assert table.loc["b4096", "comparable"]
    assert math.isnan(table.loc["b4096_long", "difference"])
    assert "300 iterations, short of 1000" in table.loc["b4096_long", "reason"]


def test_tuned_rates_their_ratio_and_quoted_numbers():
    figure = pd.concat([fcn_rows("cifar10", [0.1, 0.5], optimizer="adam", lr=1e-4, role="fcn", figure="fig2"),
                        fcn_rows("cifar10", [0.1, 0.4], optimizer="sgd", lr=1e-1, role="fcn", figure="fig2")])
    tuned = pd.DataFrame([dict(panel="fcn", optimizer="adam", lr=1e-4), dict(panel="fcn", optimizer="sgd", lr=1e-1)])
    table = numbers_table(pd.DataFrame([
        cifar_number("adam_rate", "tuned_lr", 1e-4, figure="fig2", optimizer="adam", unit="lr", epochs=None),
        cifar_number("sgd_rate", "tuned_lr", 1e-1, figure="fig2", optimizer="sgd", unit="lr", epochs=None),
        cifar_number("ratio", "tuned_lr_decades", 3, figure="fig2", optimizer="sgd", unit="decades", epochs=None),
        cifar_number("quoted", "quoted", 93.0, note="quoted from kuangliu/pytorch-cifar; not run"),
    ]), {"fig2": annotate(figure, tuned)}, "paper").set_index("id")
    assert table.loc["adam_rate", "reproduced"] == pytest.approx(1e-4)
    assert table.loc["adam_rate", "difference"] == pytest.approx(0.0)  # decades off
    assert table.loc["ratio", "reproduced"] == pytest.approx(3.0) and table.loc["ratio", "difference"] == pytest.approx(0)
    assert math.isnan(table.loc["quoted", "reproduced"]) and "not run" in table.loc["quoted", "reason"]


def test_the_shipped_numbers_name_their_settings():
    numbers = pd.read_csv(REPO / "paper/reported_numbers.csv").set_index("id")
    measured = numbers[~numbers["statistic"].isin(["quoted"])]
    assert measured["dataset"].notna().all() and measured["arch"].notna().all()
    assert (measured["epochs"].notna() | measured["iterations"].notna()).all()
    assert numbers.loc["fig4_b4096", "iterations"] == 380965
    assert numbers.loc["fig1_resnet18_sgd_reference", "statistic"] == "quoted"
    assert {"fig2_adam_rate", "fig2_sgd_rate", "fig2_rate_ratio"} <= set(numbers.index)
