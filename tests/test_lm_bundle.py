"""GPT bundles: several agd-train-lm runs in one process, each equal to its own agd-train-lm run, each with its own
directory and log; a finished member is skipped, and a bad member stops the bundle before anything trains."""

import json
import shlex
from pathlib import Path

import pandas as pd
import pytest

from agd.jobs import lm_bundle, train_lm
from test_train_lm import text_file  # noqa: F401 (a fixture)

VOLATILE = ["time_s", "tokens_per_s"]
RUN = ("--text shakespeare_char --n-layer 1 --n-head 2 --n-embd 16 --block-size 16 --batch-size 4 --eval-iters 2 "
       "--dropout 0 --max-iters 4 --eval-interval 2")
MEMBERS = {"agd": "--optimizer agd", "agd-seed1": "--optimizer agd --seed 1",
           "adamw": "--optimizer adamw --warmup-iters 1 --lr 0.001"}


def execution(text_file: Path, data: Path) -> list[str]:
    return ["--text-root", str(text_file), "--data-dir", str(data), "--device", "cpu", "--threads", "1"]


def run_bundle(text_file: Path, root: Path, members: dict[str, str]) -> int:
    argv = [*execution(text_file, root / "data"), "--manifest", str(root / "manifest.json")]
    for name, flags in members.items():
        argv += ["--member", str(root / name), f"{RUN} {flags}"]
    return lm_bundle.main(argv)


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns=VOLATILE)


def test_each_member_is_its_agd_train_lm_run(tmp_path, text_file):
    assert run_bundle(text_file, tmp_path / "bundle", MEMBERS) == 0
    manifest = json.loads((tmp_path / "bundle/manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["completed"] * len(MEMBERS)
    for name, flags in MEMBERS.items():
        solo = tmp_path / "solo" / name
        argv = [*shlex.split(f"{RUN} {flags}"), *execution(text_file, tmp_path / "solo-data"), "--out", str(solo)]
        assert train_lm.main(argv) == 0
        pd.testing.assert_frame_equal(metrics(tmp_path / "bundle" / name), metrics(solo), check_exact=True)
        records = [json.loads((root / "run.json").read_text()) for root in (tmp_path / "bundle" / name, solo)]
        assert records[0]["identity"] == records[1]["identity"]
        assert "iter 4" in (tmp_path / "bundle" / name / "train.log").read_text()


def test_a_finished_member_is_skipped(tmp_path, text_file):
    assert run_bundle(text_file, tmp_path, {"agd": MEMBERS["agd"]}) == 0
    before = (tmp_path / "agd/metrics.csv").read_text()
    assert run_bundle(text_file, tmp_path, MEMBERS) == 0
    assert (tmp_path / "agd/metrics.csv").read_text() == before
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["completed"] * len(MEMBERS)


@pytest.mark.parametrize("flags, message", [
    ("--optimizer agd --arch fcn", "--arch is not a run setting"),
    ("--optimizer agd --device cpu", "--device is an execution flag"),
    ("--optimizer sgd", "--optimizer"),
])
def test_a_bad_member_stops_the_bundle_before_anything_trains(tmp_path, text_file, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        run_bundle(text_file, tmp_path, {"agd": MEMBERS["agd"], "bad": flags})
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "agd").exists()
