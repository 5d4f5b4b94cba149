"""The transformer table (agd.tables.aggregate.lm_table) and figure, from run directories written here."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from agd.plan import lm_grid
from agd.records import file_digest
from agd.tables.aggregate import lm_summary_table, lm_table
from agd.figures import transformer
from agd.jobs.train_lm import COLUMNS
from test_workflow import with_preset

ENTROPY = 3.1


def write_run(runs_dir, run: dict, iters=(0, 50, 100)) -> pd.DataFrame:
    rows = []
    for i in iters:
        agd = run["optimizer"] == "agd"
        rows.append(dict(iter=i, tokens=i * 2048, train_loss=4.5 - i / 50, val_loss=4.4 - i / 50,
                         eta_mean=0.1 if agd and i else None, eta_min=0.05 if agd and i else None,
                         eta_max=0.2 if agd and i else None, update_mean=1e-3 if i else None,
                         update_min=5e-4 if i else None, update_max=2e-3 if i else None,
                         lr=None if agd or not i else 1e-3 / (1 + i), tokens_per_s=2e4 if i else None, time_s=i / 10))
    directory = runs_dir / run["run"]
    directory.mkdir(parents=True)
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    metrics.to_csv(directory / "metrics.csv", index=False)
    ended = {"status": "completed", "identity": {}, "args": {"max_iters": max(iters)},
             "metrics_sha256": file_digest(directory / "metrics.csv")}
    (directory / "run.json").write_text(json.dumps(ended))
    return metrics


@pytest.fixture
def paper_members(tmp_path):
    """The paper preset's transformer block: Shakespeare runs on disk (AdamW 50 iterations past its panel's
    end, to be clipped), GPT-2 off."""
    config = with_preset("paper")
    members = lm_grid.membership(config, lm_grid.FIGURE)
    members["panel_max_iters"] = 100
    for run in lm_grid.runs(config, lm_grid.FIGURE).to_dict("records"):
        if run["enabled"]:
            write_run(tmp_path, run, iters=(0, 50, 100, 150) if run["optimizer"] == "adamw" else (0, 50, 100))
    return members, tmp_path


def test_table_clips_to_the_panel_and_marks_disabled_runs(paper_members):
    members, runs_dir = paper_members
    table = lm_table(members.to_dict("records"), runs_dir, {"shakespeare_char": {"unigram_entropy": ENTROPY}})
    shakespeare = table[table["text"] == "shakespeare_char"]
    assert shakespeare["iter"].max() == 100 and len(shakespeare) == 6
    assert (shakespeare["unigram_entropy"] == ENTROPY).all() and (shakespeare["status"] == "completed").all()
    gpt2 = table[table["text"] == "openwebtext"]
    assert len(gpt2) == 2 and (gpt2["status"] == "not_run").all() and gpt2["iter"].isna().all()
    adamw = shakespeare[shakespeare["optimizer"] == "adamw"]
    assert (adamw["peak_lr"] == 1e-3).all() and adamw["lr"].iloc[-1] == pytest.approx(1e-3 / 101)

    summary = lm_summary_table(lm_grid.runs(with_preset("paper"), lm_grid.FIGURE), runs_dir).set_index("optimizer")
    assert sorted(summary["status"]) == ["completed", "completed", "not_run", "not_run"]
    assert summary[summary["text"] == "shakespeare_char"].loc["agd", "final_val_loss"] == pytest.approx(2.4)


def test_figure_draws_losses_rates_and_says_what_did_not_run(paper_members):
    members, runs_dir = paper_members
    table = lm_table(members.to_dict("records"), runs_dir, {"shakespeare_char": {"unigram_entropy": ENTROPY}})
    fig = transformer.plot(table, {"figure": "transformer", "preset": "paper", "notes": []})
    try:
        axes = np.array(fig.axes).reshape(2, 2)
        column = [ax.get_title().startswith("shakespeare_char") for ax in axes[0]].index(True)
        loss, rate = axes[0, column], axes[1, column]
        lines = [line.get_ydata() for line in loss.get_lines()]
        def drawn(expected, curves):
            return any(len(y) == len(expected) and np.allclose(y, expected, equal_nan=True) for y in curves)

        assert drawn([4.4, 3.4, 2.4], lines)  # a validation curve
        assert drawn([ENTROPY, ENTROPY], lines)  # the unigram entropy
        assert rate.get_yscale() == "log"
        assert drawn([np.nan, 1e-3 / 51, 1e-3 / 101], [line.get_ydata() for line in rate.get_lines()])
        texts = " ".join(t.get_text() for t in axes[0, 1 - column].texts)
        assert "openwebtext is off" in texts
        assert "openwebtext.enabled: true" in texts
    finally:
        plt.close(fig)


def test_a_run_under_way_or_ended_short_says_so(paper_members):
    members, runs_dir = paper_members
    members["panel_max_iters"] = 150  # AGD's runs hold 100 iterations, AdamW's 150
    agd = members[(members["optimizer"] == "agd") & members["enabled"]]["run"].iloc[0]
    (runs_dir / agd / "run.json").unlink()  # under way, as a job killed before its record
    table = lm_table(members.to_dict("records"), runs_dir, {"shakespeare_char": {"unigram_entropy": ENTROPY}})
    by_optimizer = table[table["text"] == "shakespeare_char"].groupby("optimizer")["reason"].agg(set)
    assert by_optimizer["agd"] == {"in progress: iter 100 of 150 so far"}
    assert by_optimizer["adamw"] == {""}
