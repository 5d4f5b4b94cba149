"""The tidy tables read runs through their verified records: a run whose files disagree is `damaged` with the
reason, never completed; a run in progress or ended short is never final; a metric that is not a finite number
never reaches a verdict as one; and each row or run that cannot count says why, down to "2 of 3 seeds"."""

import json
import math
import shutil

import pandas as pd
import pytest

from agd import records
from agd.jobs import train
from agd.plan.specs import ImageRun
from agd.plan.table import member, unique_runs
from agd.tables.aggregate import figure_table, summary_table
from agd.tables.selection import seed_count

EPOCHS = 2
EXECUTION = ["--device", "cpu", "--threads", "1"]


def spec(optimizer: str, seed: int) -> ImageRun:
    return ImageRun(arch="fcn", dataset="mnist5k", depth=2, width=8, optimizer=optimizer, seed=seed,
                    epochs=EPOCHS).filled()


def trained(runs_dir, run: ImageRun, *extra: str):
    out = runs_dir / run.run_id()
    assert train.main([*run.argv(), *EXECUTION, *extra, "--out", str(out)]) == 0
    return out


def rewrite_metrics(out, change) -> None:
    """Change metrics.csv and record its new digest, as a careful hand would: only the values can tell."""
    metrics = pd.read_csv(out / records.METRICS)
    changed = change(metrics)  # a new frame, or None for a change in place
    (metrics if changed is None else changed).to_csv(out / records.METRICS, index=False)
    record = json.loads((out / records.RUN_RECORD).read_text())
    record["metrics_sha256"] = records.file_digest(out / records.METRICS)
    (out / records.RUN_RECORD).write_text(json.dumps(record))


def set_last(column: str, value: float):
    def change(metrics: pd.DataFrame) -> None:
        metrics.loc[metrics.index[-1], column] = value
    return change


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    """Four AGD seeds (one fine, one edited after it ended, one missing, one under way) and four Adam seeds (one
    fine, one with an accuracy of inf, one whose last test loss is NaN, one with a garbled run.json)."""
    runs_dir = tmp_path_factory.mktemp("runs")
    trained(runs_dir, spec("agd", 0))
    edited = trained(runs_dir, spec("agd", 1))
    (edited / records.METRICS).write_text((edited / records.METRICS).read_text().replace("epoch,2,", "epoch,2,1"))
    running = trained(runs_dir, spec("agd", 3), "--keep-checkpoint", "--epochs", "1")
    (running / records.RUN_RECORD).unlink()  # as a job killed before its record: under way at epoch 1
    trained(runs_dir, spec("adam", 0))
    rewrite_metrics(trained(runs_dir, spec("adam", 1)), set_last("test_acc", math.inf))
    rewrite_metrics(trained(runs_dir, spec("adam", 2)), set_last("test_loss", math.nan))
    (trained(runs_dir, spec("adam", 3)) / records.RUN_RECORD).write_text("{not json")
    specs = [spec(optimizer, seed) for optimizer in ("agd", "adam") for seed in range(4)]
    members = pd.DataFrame([member(run, figure="fig", panel="p", gpus=1, enabled=True) for run in specs])
    rows, _ = figure_table(members.to_dict("records"), runs_dir, "final_test_acc")
    return rows, summary_table(unique_runs(members, ImageRun), runs_dir).set_index(["optimizer", "seed"])


def of(rows: pd.DataFrame, optimizer: str, seed: int) -> pd.DataFrame:
    return rows[(rows["optimizer"] == optimizer) & (rows["seed"] == seed)]


def test_only_runs_that_ended_at_the_figures_length_with_finite_metrics_are_final(figure):
    rows, _ = figure
    finals = rows[rows["final"]]
    assert sorted(zip(finals["optimizer"], finals["seed"])) == [("adam", 0), ("agd", 0)]
    assert (finals["epoch"] == EPOCHS).all() and (finals["reason"] == "").all()


def test_each_run_that_cannot_count_says_why(figure):
    rows, _ = figure
    reason = {(o, s): of(rows, o, s)["reason"].iloc[-1] for o, s in zip(rows["optimizer"], rows["seed"])}
    assert "metrics.csv differs from the one the run ended with" in reason["agd", 1]
    assert reason["agd", 2] == "missing"
    assert reason["agd", 3] == "in progress: epoch 1 of 2 so far"
    assert "test_acc inf is not an accuracy" in reason["adam", 1]
    assert reason["adam", 2] == "its last epoch's test_loss is nan: not a number to compare"
    assert "run.json cannot be read" in reason["adam", 3]
    for run in [("agd", 1), ("adam", 1), ("adam", 3)]:
        assert (of(rows, *run)["status"] == records.DAMAGED).all() and len(of(rows, *run)) == 1
    assert (of(rows, "agd", 3)["reason"] != "").all()  # every row of a run under way says so


def test_no_infinite_number_reaches_a_verdict(figure):
    rows, _ = figure
    shown = rows[rows["kind"] == "epoch"]
    assert not shown[["train_acc", "test_acc"]].isin([math.inf, -math.inf]).any().any()


def test_the_seeds_that_count_are_counted_with_the_reasons_of_the_others(figure):
    rows, _ = figure
    agd = seed_count(rows[rows["optimizer"] == "agd"])
    assert (agd.counted, agd.planned) == (1, 4)
    text = str(agd)
    assert text.startswith("1 of 4 seeds (seed 1: ") and "seed 2: missing" in text
    assert "seed 3: in progress: epoch 1 of 2 so far" in text
    assert str(seed_count(rows[(rows["optimizer"] == "agd") & (rows["seed"] == 0)])) == "1 of 1 seed"


def test_the_summary_never_calls_a_damaged_or_unfinished_run_completed(figure):
    _, summary = figure
    assert summary.loc[("agd", 0), "status"] == "completed" and summary.loc[("agd", 0), "reason"] == ""
    for run in [("agd", 1), ("adam", 1), ("adam", 3)]:
        assert summary.loc[run, "status"] == records.DAMAGED and summary.loc[run, "reason"]
        assert pd.isna(summary.loc[run, "final_test_acc"])
    assert summary.loc[("agd", 2), "status"] == "missing"
    assert summary.loc[("agd", 3), "status"] == "running"
    assert summary.loc[("agd", 3), "reason"] == "in progress: epochs_completed 1 of 2 so far"


def test_an_ended_run_shorter_than_the_figure_is_not_final(tmp_path):
    short = spec("agd", 0)
    trained(tmp_path, short, "--epochs", "1")
    longer = member(short, figure="fig", panel="p", gpus=1, enabled=True)  # the figure asks for 2 epochs
    rows, _ = figure_table([longer], tmp_path, "final_test_acc")
    assert not rows["final"].any() and (rows["reason"] == "ended at epoch 1 of the figure's 2").all()


def edit_record(change):
    def edit(out) -> None:
        record = json.loads((out / records.RUN_RECORD).read_text())
        change(record)
        (out / records.RUN_RECORD).write_text(json.dumps(record))
    return edit


def metrics_a_directory(out) -> None:
    (out / records.METRICS).unlink()
    (out / records.METRICS).mkdir()


HAND_MADE = {  # files no run writes, each with what the table's reason (and the job's refusal) names
    "metrics-a-directory": (metrics_a_directory, "metrics.csv cannot be read"),
    "identity-null": (edit_record(lambda r: r.update(identity=None)), "no finished run writes"),
    "epochs-text": (edit_record(lambda r: r["args"].update(epochs="2")), "no finished run writes"),
    "run-json-a-list": (lambda out: (out / records.RUN_RECORD).write_text("[1]"), "holds no JSON object"),
    "header-only": (lambda out: rewrite_metrics(out, lambda m: m.iloc[:0]), "holds no rows"),
    "no-kind-column": (lambda out: rewrite_metrics(out, lambda m: m.drop(columns="kind")), "has no kind column"),
    "epoch-missing": (lambda out: rewrite_metrics(out, set_last("epoch", math.nan)), "a row without its epoch"),
    "accuracy-text": (lambda out: rewrite_metrics(out, lambda m: m.__setitem__("test_acc", "high")), "not a number"),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("finished")
    trained(runs_dir, spec("agd", 0))
    return runs_dir


@pytest.mark.parametrize("name", HAND_MADE)
def test_files_no_run_writes_are_damaged_in_the_tables_and_refused_by_the_job(finished, tmp_path, capsys, name):
    change, named = HAND_MADE[name]
    run = spec("agd", 0)
    shutil.copytree(finished, tmp_path, dirs_exist_ok=True)
    out = tmp_path / run.run_id()
    change(out)
    members = [member(run, figure="fig", panel="p", gpus=1, enabled=True)]
    rows, _ = figure_table(members, tmp_path, "final_test_acc")
    assert list(rows["status"]) == [records.DAMAGED] and named in rows["reason"].iloc[0], rows["reason"].iloc[0]
    summary = summary_table(unique_runs(pd.DataFrame(members), ImageRun), tmp_path)
    assert list(summary["status"]) == [records.DAMAGED]
    if name not in ("header-only", "no-kind-column", "epoch-missing", "accuracy-text"):  # digests agree there
        capsys.readouterr()
        assert train.main([*run.argv(), *EXECUTION, "--out", str(out)]) == 2
        assert "Traceback" not in capsys.readouterr().err


def test_the_peers_table_reads_a_tuned_run_with_a_garbled_record_as_damaged(tmp_path):
    from agd.tables.peers import FIGURE, peers_table

    runs_dir = tmp_path / "runs"
    run = spec("adam", 1)
    out = trained(runs_dir, run)
    (out / records.RUN_RECORD).write_text("{not json")
    row = member(run, figure=FIGURE, panel="c", gpus=1, enabled=True, role="evaluation")
    table = peers_table([row], runs_dir)
    assert set(table["status"]) == {records.DAMAGED} and "run.json cannot be read" in table["reason"].iloc[0]
    assert set(table["seed"]) == {1}
