"""The paper's reported numbers joined with reproduced ones, and the LaTeX made from them."""

import math
from pathlib import Path

import pandas as pd
import pytest

from agd.tables.numbers import numbers_table
from agd.tables.paper import escape, figures_tex, numbers_tex
from agd.tables.selection import annotate

REPO = Path(__file__).parents[1]


def run_rows(figure, panel, optimizer, test_accs, lr=None, batch_size=128, width=64, status="completed", run=None):
    run = run or f"{panel}/{optimizer}/{lr}/{batch_size}/{width}"
    return pd.DataFrame([
        dict(figure=figure, panel=panel, run=run, dataset="mnist5k", optimizer=optimizer, lr=lr,
             batch_size=batch_size, width=width, status=status, kind="epoch", epoch=e, test_acc=acc)
        for e, acc in enumerate(test_accs)
    ])


def reported(*rows) -> pd.DataFrame:
    columns = ["id", "figure", "panel", "optimizer", "batch_size", "statistic", "reported", "quantity", "source"]
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
    fig4 = pd.concat([run_rows("fig4", "batch_size", "agd", [0.1, 0.58], batch_size=128),
                      run_rows("fig4", "batch_size", "agd", [math.nan], batch_size=32, status="missing")])
    table = numbers_table(reported(
        ("best", "fig3", "grid", "agd", None, "grid_best_final_test_acc", 63.7, "best", "s"),
        ("worst", "fig3", "grid", "agd", None, "grid_worst_final_test_acc", 42.55, "worst", "s"),
        ("b128", "fig4", "batch_size", "agd", 128, "final_test_acc", 58.0, "B=128", "s"),
        ("b32", "fig4", "batch_size", "agd", 32, "final_test_acc", 55.0, "B=32", "s"),
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
