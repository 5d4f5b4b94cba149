"""What training computes, pinned: a few short runs of both jobs and of optimizers that take different paths through
the loop (AGD's eta at init, a tuned rate, Schedule-Free's and DoG's evaluation points, a conv net with BatchNorm,
AdamW's schedule), against the metrics they wrote when they were recorded (tests/reference_metrics.csv). A change
that is not meant to change what a run computes keeps them.

Tolerances: these are float32 runs on the CPU, and another machine's kernels may round differently: a few units in
the last place per operation, which over a run's few dozen steps stay far below 1e-4 relative. A change to what is
computed (an initialisation, eta, a step, the order of the data) moves the losses by a percent or more. So losses,
eta, update sizes and rates are compared to 1e-3 relative, and accuracies, which move by one test image at a time,
to 3 images in 1000.

To record them again, after a change meant to change them: python tests/test_reference_runs.py
"""

import shlex
import sys
from pathlib import Path

import pandas as pd
import pytest

from agd.jobs import train, train_lm

REFERENCE = Path(__file__).with_name("reference_metrics.csv")
FCN = "--arch fcn --dataset mnist5k --depth 4 --width 32 --epochs 1"
LM = ("--text shakespeare_char --n-layer 1 --n-head 2 --n-embd 32 --block-size 32 --dropout 0.1 --batch-size 8 "
      "--max-iters 6 --eval-interval 3 --eval-iters 2")
RUNS = {
    "agd": (train, f"{FCN} --optimizer agd --log-steps 2"),
    "adam": (train, f"{FCN} --optimizer adam --lr 1e-3 --log-steps 2"),
    "sf-adamw": (train, f"{FCN} --optimizer sf-adamw"),
    "dog": (train, f"{FCN} --optimizer dog --seed 1"),
    "resnet18-agd": (train, "--arch resnet18 --dataset mnist5k --width 4 --epochs 1 --optimizer agd --synthetic-data"),
    "lm-agd": (train_lm, f"{LM} --optimizer agd"),
    "lm-adamw": (train_lm, f"{LM} --optimizer adamw --warmup-iters 2"),
}
KEYS = ["run", "kind", "epoch", "step", "iter"]
EXACT = {"kind", "epoch", "step", "iter", "tokens"}
ACCURACIES = {"train_acc", "test_acc"}
TIMES = {"time_s", "tokens_per_s"}


def text(chars: int = 6000) -> str:
    """A made-up text with some structure, the same everywhere (no randomness, no Python version's docs)."""
    words = ("the", "cat", "sat", "on", "a", "red", "mat", "and", "dog", "ran")
    return "".join(words[(i * i + 3 * i) % 7 + i % 3] + (".\n" if i % 9 == 8 else " ") for i in range(chars // 4))


def train_all(root: Path) -> pd.DataFrame:
    """Every reference run, trained here, as one table."""
    (root / "input.txt").write_text(text())
    frames = []
    for name, (job, flags) in RUNS.items():
        out = root / name
        execution = ["--device", "cpu", "--threads", "1", "--out", str(out)]
        if job is train_lm:
            execution += ["--data-dir", str(root / "data"), "--text-root", str(root / "input.txt")]
        assert job.main([*shlex.split(flags), *execution]) == 0, name
        frames.append(pd.read_csv(out / "metrics.csv").assign(run=name))
    table = pd.concat(frames, ignore_index=True)
    table = table.drop(columns=[c for c in TIMES if c in table])
    return table[[c for c in KEYS if c in table] + [c for c in table if c not in KEYS]]


@pytest.mark.slow
def test_training_computes_what_it_computed_when_recorded(tmp_path):
    reference = pd.read_csv(REFERENCE)
    now = train_all(tmp_path)
    assert list(now.columns) == list(reference.columns) and len(now) == len(reference)
    for column in now.columns:
        if column == "run" or column in EXACT:
            pd.testing.assert_series_equal(now[column], reference[column], check_dtype=False)
        elif column in ACCURACIES:
            pd.testing.assert_series_equal(now[column], reference[column], rtol=0, atol=3e-3)
        else:
            pd.testing.assert_series_equal(now[column], reference[column], rtol=1e-3, atol=1e-12)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        train_all(Path(scratch)).to_csv(REFERENCE, index=False)
    print(f"wrote {REFERENCE}", file=sys.stderr)
