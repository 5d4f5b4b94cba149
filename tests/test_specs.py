"""Run specs: every run of both presets survives the trip to its command line and back, and its identity,
directory and table columns come from the spec's fields."""

import argparse
import copy
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agd.jobs import arguments, lm_arguments
from agd.plan import grid, lm_grid, specs
from agd.plan import workflow as pipeline
from agd.plan.specs import ImageRun, LMRun

CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())
# What run.json and checkpoints of finished runs hold as their identity: unchanged, so they are reused.
IMAGE_IDENTITY = {"arch", "dataset", "optimizer", "lr", "loss", "beta", "gain", "train_bs", "depth", "width", "seed",
                  "log_steps", "bias"}
LM_IDENTITY = {"text", "optimizer", "gain", "lr", "min_lr", "warmup_iters", "lr_decay_iters", "beta1", "beta2",
               "weight_decay", "grad_clip", "n_layer", "n_head", "n_embd", "block_size", "dropout", "bias",
               "batch_size", "grad_accum", "eval_interval", "eval_iters", "seed"}


def config_for(preset: str) -> dict:
    config = copy.deepcopy(CONFIG)
    config.update(preset=preset, imagenet={"enabled": True, "root": "/data/imagenet"},
                  openwebtext={"enabled": True, "root": "/data/owt"})
    return config


def parsed(parser: argparse.ArgumentParser, spec: type[specs.RunSpec], command: str):
    """The spec the job reads from a command line, defaults filled as the job fills them (no machine checks)."""
    args = parser.parse_args([*shlex.split(command), "--out", "x"])
    run = spec.from_args(args)
    assert run.problem() is None, run.problem()
    return run.filled()


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_image_run_round_trips_through_its_command_line(preset):
    config = config_for(preset)
    runs = grid.runs(config)
    assert len(runs) > 60
    for row in runs.to_dict("records"):
        spec = ImageRun.from_row(row)
        command = pipeline.bundle_command(pd.DataFrame([row]), config["presets"][preset], config)
        command = shlex.split(command)[-1]  # the member's flags, as the bundle hands them to agd-train
        assert parsed(arguments.build_parser(), ImageRun, command) == spec, command
        assert spec.run_id() == row["run"]


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_lm_run_round_trips_through_its_command_line(preset):
    config = config_for(preset)
    runs = lm_grid.runs(config)
    assert len(runs) >= 2
    for row in runs.to_dict("records"):
        spec = LMRun.from_row(row)
        command = pipeline.lm_bundle_command(pd.DataFrame([row]), config["presets"][preset], config)
        command = shlex.split(command)[-1]  # the member's flags, as the bundle hands them to agd-train-lm
        assert parsed(lm_arguments.build_parser(), LMRun, command) == spec, command
        assert spec.run_id() == row["run"]


def test_identity_keeps_the_keys_finished_runs_were_recorded_with():
    assert set(ImageRun().identity()) == IMAGE_IDENTITY
    assert set(LMRun().identity()) == LM_IDENTITY


def test_run_directories_are_unchanged_and_name_non_default_settings():
    run = ImageRun(arch="fcn", dataset="mnist5k", depth=8, width=256, optimizer="adam", lr=1e-4)
    assert run.run_id() == "fcn-mnist5k-mse/d8-w256-bs128/adam-lr1e-04/seed0"
    assert ImageRun(arch="resnet18", width=64, bias=True, optimizer="agd-bias").run_id() == \
        "resnet18-cifar10-mse/w64-bs128-bias/agd-bias/seed0"
    assert ImageRun(depth=4, width=8, gain=2.0).run_id() == "fcn-cifar10-mse/d4-w8-bs128/agd-gain2/seed0"
    assert ImageRun(depth=4, width=8, loss="xent", beta=2.0).run_id() == "fcn-cifar10-xent-beta2/d4-w8-bs128/agd/seed0"
    adamw = LMRun(text="shakespeare_char", optimizer="adamw", lr=1e-3, warmup_iters=100)
    assert adamw.run_id() == "gpt-shakespeare_char/l6-h6-e384-b256-drop0.2/bs64-ga1/adamw-lr1e-03-wu100/seed0"


def test_table_columns_come_from_the_key_settings():
    assert ImageRun.columns()[:10] == ["arch", "dataset", "loss", "depth", "width", "batch_size", "optimizer", "lr",
                                       "seed", "bias"]
    assert "peak_lr" in LMRun.columns() and "lr" not in LMRun.columns()  # `lr` is each metric row's scheduled rate
    assert ImageRun(optimizer="sgd", lr=0.1).params()["family"] == "tuned"
    assert set(grid.runs(config_for("quick")).columns) >= {*ImageRun.columns(), "family", "epochs", "log_steps"}


@pytest.mark.parametrize("spec, problem", [
    (ImageRun(optimizer="agd", lr=0.1), "--lr is a setting of adam, sgd"),
    (ImageRun(optimizer="adam", lr=1e-3, gain=2.0), "--gain is a setting of agd, agd-bias"),
    (ImageRun(optimizer="agd", bias=True), "use --optimizer agd-bias"),
    (ImageRun(depth=1), "--depth 1"),
    (LMRun(optimizer="agd", warmup_iters=10), "--warmup-iters is a setting of adamw"),
    (LMRun(n_embd=30, n_head=4), "n_head"),
    (LMRun(optimizer="adamw", min_lr=0.5), "--min-lr"),
])
def test_a_spec_names_what_its_job_would_refuse(spec, problem):
    assert problem in spec.problem()


def test_defaults_come_from_the_registry():
    assert ImageRun(optimizer="adam").filled().lr == 1e-3 and ImageRun(optimizer="sgd").filled().lr == 0.1
    assert ImageRun(optimizer="agd").filled().lr is None
    adamw = LMRun(optimizer="adamw", lr=6e-4, max_iters=1000).filled()
    assert adamw.min_lr == pytest.approx(6e-5)
    assert (adamw.lr_decay_iters, adamw.warmup_iters, adamw.beta2) == (1000, 100, 0.99)
