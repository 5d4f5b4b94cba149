"""The language-model job end to end on a text made here: metrics, records, resume, divergence, bad input."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from agd.data.synthetic import made_up_text
from agd.optim.schedule import warmup_cosine
from agd.jobs.train_lm import COLUMNS, main

WORDS = ("the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "red", "big", "house", "and", "saw")


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "input.txt"
    path.write_text(made_up_text())
    return path


def tiny_run(text_file: Path, data_dir: Path) -> list[str]:
    return ["--text", "shakespeare_char", "--text-root", str(text_file), "--data-dir", str(data_dir),
            "--n-layer", "2", "--n-head", "2", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
            "--eval-iters", "4", "--device", "cpu", "--threads", "1"]


def train(tmp_path: Path, text_file: Path, *extra: str, name: str = "run") -> tuple[int, Path]:
    out = tmp_path / name
    code = main([*tiny_run(text_file, tmp_path / "data"), "--out", str(out), *extra])
    return code, out


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv")


def test_agd_lowers_the_loss_and_records_the_run(tmp_path, text_file, capsys):
    code, out = train(tmp_path, text_file, "--max-iters", "60", "--eval-interval", "20", "--dropout", "0")
    assert code == 0
    m = metrics(out)
    assert list(m.columns) == COLUMNS
    assert m["iter"].tolist() == [0, 20, 40, 60]
    assert m["tokens"].tolist() == [0, 20 * 256, 40 * 256, 60 * 256]  # batch 8 x block 32
    assert m["val_loss"].iloc[-1] < m["val_loss"].iloc[0] - 0.5
    assert m["lr"].isna().all()
    assert m.loc[0, ["eta_mean", "update_mean", "tokens_per_s"]].isna().all()  # row 0: the init, no step yet
    later = m.iloc[1:]
    assert (later["eta_min"] > 0).all() and (later["eta_min"] <= later["eta_mean"]).all()
    assert (later["eta_mean"] <= later["eta_max"]).all() and (later["tokens_per_s"] > 0).all()
    assert (later["update_min"] > 0).all()

    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["iterations"] == 60
    assert record["L"] == 2 + 6 * 2
    assert record["model"]["parametrization"] == "agd" and record["precision"] == "float32"
    assert record["final"]["val_loss"] == pytest.approx(m["val_loss"].iloc[-1])
    entropy = record["text"]["unigram_entropy"]
    assert 1.5 < entropy < 3.5
    printed = capsys.readouterr().out
    assert f"unigram entropy of the validation text {entropy:.4f}" in printed
    assert not (out / "checkpoint.pt").exists()


def test_adamw_follows_nanogpts_schedule(tmp_path, text_file):
    code, out = train(tmp_path, text_file, "--optimizer", "adamw", "--lr", "2e-3", "--warmup-iters", "10",
                      "--max-iters", "40", "--eval-interval", "10")
    assert code == 0
    m = metrics(out)
    expected = [warmup_cosine(i - 1, lr=2e-3, min_lr=2e-4, warmup_iters=10, decay_iters=40) for i in (10, 20, 30, 40)]
    assert m["lr"].iloc[1:].tolist() == pytest.approx(expected)
    assert m[["eta_mean", "eta_min", "eta_max"]].isna().all().all()
    assert m["val_loss"].iloc[-1] < m["val_loss"].iloc[0]
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["parametrization"] == "standard" and record["L"] is None
    assert record["args"]["min_lr"] == pytest.approx(2e-4) and record["args"]["lr_decay_iters"] == 40


def test_warmup_cosine_shape():
    rates = [warmup_cosine(i, lr=1.0, min_lr=0.1, warmup_iters=10, decay_iters=110) for i in range(130)]
    assert rates[0] == pytest.approx(1 / 11) and rates[9] == pytest.approx(10 / 11)
    assert rates[10] == pytest.approx(1.0) and rates[60] == pytest.approx(0.55)
    assert rates[110] == pytest.approx(0.1) and rates[129] == 0.1
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))


def test_finished_run_is_not_repeated_and_other_arguments_are_refused(tmp_path, text_file, capsys):
    args = ("--max-iters", "4", "--eval-interval", "2")
    assert train(tmp_path, text_file, *args)[0] == 0
    assert train(tmp_path, text_file, *args)[0] == 0
    assert "nothing to do" in capsys.readouterr().out
    assert train(tmp_path, text_file, *args, "--seed", "1")[0] == 2
    assert "holds a different run" in capsys.readouterr().err


def test_kept_checkpoint_extends_agd_to_the_same_numbers(tmp_path, text_file):
    common = ("--eval-interval", "5", "--keep-checkpoint")
    assert train(tmp_path, text_file, "--max-iters", "10", *common, name="short")[0] == 0
    assert train(tmp_path, text_file, "--max-iters", "20", *common, name="short")[0] == 0
    assert train(tmp_path, text_file, "--max-iters", "20", *common, name="straight")[0] == 0
    volatile = ["time_s", "tokens_per_s"]
    pd.testing.assert_frame_equal(metrics(tmp_path / "short").drop(columns=volatile),
                                  metrics(tmp_path / "straight").drop(columns=volatile))


def test_divergence_is_recorded(tmp_path, text_file, capsys):
    code, out = train(tmp_path, text_file, "--optimizer", "adamw", "--lr", "1e8", "--grad-clip", "0",
                      "--warmup-iters", "0", "--max-iters", "30", "--eval-interval", "5")
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "diverged", capsys.readouterr().out
    assert record["iterations"] < 30


BAD_ARGUMENTS = [
    (["--lr", "1e-3"], "--lr"),
    (["--n-embd", "30", "--n-head", "4"], "n_head"),
    (["--optimizer", "adamw", "--lr", "1e-3", "--min-lr", "1e-2"], "--min-lr"),
    (["--grad-accum", "0"], "--grad-accum"),
    (["--optimizer", "adamw", "--gain", "2"], "--gain"),
    (["--dropout", "1.5"], "dropout"),
    (["--optimizer", "adamw", "--beta2", "1.0"], "--beta2"),
    (["--optimizer", "adamw", "--min-lr", "0.5"], "--min-lr"),  # above the default lr
    (["--optimizer", "adamw", "--warmup-iters", "500", "--max-iters", "100"], "--warmup-iters"),
    (["--precision", "bfloat16"], "bfloat16"),
]


@pytest.mark.parametrize("extra, named", BAD_ARGUMENTS)
def test_bad_arguments_exit_2_naming_the_argument(tmp_path, text_file, capsys, extra, named):
    with pytest.raises(SystemExit) as exit_info:
        train(tmp_path, text_file, *extra)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


def test_block_longer_than_the_text_is_refused(tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text(made_up_text(500))
    code = main([*tiny_run(short, tmp_path / "data"), "--block-size", "64", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "--block-size 64" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_bfloat16_on_a_machine_without_cuda_is_refused(tmp_path, text_file, capsys):
    code, out = train(tmp_path, text_file, "--device", "auto", "--precision", "bfloat16")
    assert code == 2 and "bfloat16" in capsys.readouterr().err and not out.exists()


def test_unreadable_checkpoint_is_refused_with_the_fix(tmp_path, text_file, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code, _ = train(tmp_path, text_file, "--max-iters", "2")
    assert code == 2 and "delete" in capsys.readouterr().err


def test_accumulated_micro_batches_are_averaged(tmp_path, text_file, monkeypatch):
    """Two copies of one micro-batch make the gradient of that batch, not twice it: grad_accum 2 over
    copies takes the steps of grad_accum 1 (a sum would double G and raise eta)."""
    from agd.data.text import TokenData
    from agd.plan.specs import EVAL_SEED

    args = ("--max-iters", "4", "--eval-interval", "2", "--dropout", "0")
    assert train(tmp_path, text_file, *args, name="once")[0] == 0
    draw = TokenData.batch

    def copies(self, split, batch_size, block_size, *, seed, index):
        # Training micro-batches 2k and 2k+1 are both batch k; evaluation batches are left alone.
        return draw(self, split, batch_size, block_size, seed=seed, index=index if seed == EVAL_SEED else index // 2)

    monkeypatch.setattr(TokenData, "batch", copies)
    assert train(tmp_path, text_file, *args, "--grad-accum", "2", name="twice")[0] == 0
    once, twice = metrics(tmp_path / "once"), metrics(tmp_path / "twice")
    for column in ("eta_mean", "eta_max", "train_loss", "val_loss"):
        pd.testing.assert_series_equal(twice[column], once[column], rtol=1e-5)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused(tmp_path, text_file, capsys):
    with pytest.raises(SystemExit):
        train(tmp_path, text_file, "--device", "cuda")
    assert "no CUDA device" in capsys.readouterr().err


# --- resume after a kill or a preemption signal (real processes) ---

RESUME = ["--max-iters", "60", "--eval-interval", "10", "--dropout", "0.2"]
VOLATILE = ["time_s", "tokens_per_s"]


def command(text_file: Path, tmp_path: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "agd.jobs.train_lm", *tiny_run(text_file, tmp_path / "data"), *RESUME,
            "--out", str(out), *extra]


def finish(text_file: Path, tmp_path: Path, out: Path) -> pd.DataFrame:
    done = subprocess.run(command(text_file, tmp_path, out), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return metrics(out).drop(columns=VOLATILE)


def wait_for_rows(job: subprocess.Popen, rows: int) -> None:
    seen = 0
    while seen < rows:
        line = job.stdout.readline()
        assert line, f"job ended early: {job.stderr.read()}"
        seen += line.startswith("iter")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigkill", signal.SIGTERM, signal.SIGUSR1])
def test_interrupted_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path, text_file, how):
    """Dropout 0.2: the resumed run must also continue the random stream of the dropout masks."""
    straight = finish(text_file, tmp_path, tmp_path / "straight")
    out = tmp_path / "interrupted"
    extra = ("--checkpoint-every", "0") if how == "sigkill" else ()
    job = subprocess.Popen(command(text_file, tmp_path, out, *extra), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    wait_for_rows(job, 3)
    if how == "sigkill":
        job.kill()
        job.wait()
    else:
        job.send_signal(how)
        _, stderr = job.communicate(timeout=60)
        assert job.returncode == 128 + how, stderr
        assert "checkpoint saved" in stderr
    assert (out / "checkpoint.pt").exists() and not (out / "run.json").exists()
    resumed = finish(text_file, tmp_path, out)
    pd.testing.assert_frame_equal(resumed, straight)


@pytest.mark.slow
def test_two_processes_take_the_steps_of_one(tmp_path, text_file):
    """torchrun with 2 gloo processes splits each iteration's 2 micro-batches: same weights as 1 process,
    dropout included (its masks follow the micro-batch index, not the process)."""
    args = [*tiny_run(text_file, tmp_path / "data"), "--max-iters", "6", "--eval-interval", "3", "--dropout", "0.2",
            "--grad-accum", "2", "--keep-checkpoint"]
    one = subprocess.run([sys.executable, "-m", "agd.jobs.train_lm", *args, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                          "-m", "agd.jobs.train_lm", "--distribute", *args, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    weights = [torch.load(tmp_path / name / "checkpoint.pt", weights_only=False)["model"] for name in ("one", "two")]
    for name, value in weights[0].items():
        torch.testing.assert_close(weights[1][name], value, rtol=1e-4, atol=1e-6)
    volatile = VOLATILE
    pd.testing.assert_frame_equal(metrics(tmp_path / "one").drop(columns=volatile),
                                  metrics(tmp_path / "two").drop(columns=volatile), rtol=1e-4, atol=1e-6)
