"""Finished training jobs whose runs were deleted or changed since (agd.plan.stale), on made-up run directories:
the checks are those the training jobs make (agd.records), read without torch."""

import json
import shutil
from pathlib import Path

import pytest

from agd.io import write_json
from agd.plan import stale
from agd.records import file_digest


def ended_run(out: Path, rows: str = "kind,epoch,train_loss\nepoch,0,1.0\nepoch,1,0.5\n") -> Path:
    out.mkdir(parents=True)
    (out / "metrics.csv").write_text(rows)
    write_json(out / "run.json", {"status": "completed", "identity": {"seed": 0}, "args": {"epochs": 1},
                                  "metrics_sha256": file_digest(out / "metrics.csv")})
    return out


@pytest.fixture
def finished(tmp_path, monkeypatch) -> str:
    """A bundle that ended with two runs: its manifest, relative to the working directory as the workflow's are."""
    monkeypatch.chdir(tmp_path)
    outs = [str(ended_run(Path("results/runs") / name / "seed0")) for name in ("a", "b")]
    write_json(Path("results/bundles/fcn-x.json"), {"runs": [{"out": out, "status": "completed"} for out in outs]})
    return "results/bundles/fcn-x.json"


def test_a_whole_bundle_needs_no_record(finished):
    assert stale.manifest_problems(finished) == {}
    assert stale.records(finished) == []


def test_a_bundle_yet_to_run_needs_no_record(tmp_path):
    assert stale.records(str(tmp_path / "results/bundles/fcn-y.json")) == []


def test_deleted_and_changed_runs_are_named(finished):
    Path("results/runs/a/seed0/metrics.csv").write_text("kind,epoch,train_loss\nepoch,0,1.0\n")
    (Path("results/runs/b/seed0") / "run.json").unlink()
    problems = stale.manifest_problems(finished)
    assert "differs from the one the run ended with" in problems["results/runs/a/seed0"]
    assert problems["results/runs/b/seed0"] == "results/runs/b/seed0/run.json was deleted"
    assert stale.records(finished) == ["results/bundles/fcn-x.set-aside-1.txt"]


def test_an_unreadable_manifest_is_stale(finished):
    Path(finished).write_text("{")
    assert list(stale.manifest_problems(finished)) == [finished]


def test_setting_aside_keeps_the_damaged_run_and_records_why(finished):
    damaged = Path("results/runs/a/seed0")
    (damaged / "metrics.csv").write_text("edited\n")
    shutil.rmtree("results/runs/b")
    record = stale.records(finished)[-1]
    lines = stale.set_aside(finished, record)

    assert not damaged.exists()  # the job trains it afresh
    kept = Path("results/bundles/fcn-x.set-aside-1/results/runs/a/seed0")
    assert (kept / "metrics.csv").read_text() == "edited\n" and (kept / "run.json").exists()
    text = Path(record).read_text()
    assert text.splitlines() == lines and "results/runs/b/seed0 was deleted" in text and str(kept) in text


def test_records_stay_inputs_once_the_runs_are_whole_again(finished):
    run_json = Path("results/runs/b/seed0/run.json")
    run_json.unlink()
    first = stale.records(finished)[-1]
    stale.set_aside(finished, first)
    run_json.write_text(json.dumps({"status": "completed", "identity": {"seed": 0}, "args": {"epochs": 1},
                                    "metrics_sha256": file_digest(run_json.parent / "metrics.csv")}))
    assert stale.records(finished) == [first]  # retrained: the record made is kept, no new one asked
    run_json.unlink()
    assert stale.records(finished) == [first, "results/bundles/fcn-x.set-aside-2.txt"]  # harmed again


def test_a_record_of_another_bundle_is_not_this_ones(finished):
    Path("results/bundles/fcn-x-2.set-aside-1.txt").write_text("")
    Path("results/bundles/fcn-x.set-aside-1.log").write_text("")
    assert stale.records(finished) == []
