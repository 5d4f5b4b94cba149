"""The run table: config grids expanded once, shared runs merged, readable run directories."""

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from agd.plan import grid, specs
from agd.plan.workflow import bundle_command

CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())


def config_for(preset: str, **overrides) -> dict:
    config = copy.deepcopy(CONFIG)
    config["preset"] = preset
    config.update(overrides)
    return config


def test_run_ids_are_readable_and_lossless():
    run = dict(arch="fcn", dataset="mnist5k", loss="mse", depth=8, width=256, batch_size=128,
               optimizer="adam", lr=1e-4, seed=0, bias=False)
    assert grid.run_id(run) == "fcn-mnist5k-mse/d8-w256-bs128/adam-lr1e-04/seed0"
    conv = run | dict(arch="resnet18", depth=None, width=64, optimizer="agd", lr=None, bias=True)
    assert grid.run_id(conv) == "resnet18-mnist5k-mse/w64-bs128-bias/agd/seed0"
    assert specs.lr_tag(5e-7) == "5e-07"
    assert specs.lr_tag(2.5e-4) != specs.lr_tag(2e-4)


def test_shared_runs_train_once_for_the_longest_figure():
    table = grid.membership(config_for("paper"))
    unique = grid.runs(config_for("paper")).set_index("run")
    # Fig. 3's depth-16 width-512 cell is Fig. 1's FCN AGD run (spec §6 #26).
    shared = "fcn-cifar10-mse/d16-w512-bs128/agd/seed0"
    assert set(table[table["run"] == shared]["figure"]) == {"fig1", "fig3"}
    # Fig. 4's batch-128 run is Fig. 3's depth-4 width-512 cell: 2000 epochs serve both, with step rows.
    cell = "fcn-cifar10-mse/d4-w512-bs128/agd/seed0"
    assert unique.loc[cell, "epochs"] == 2000
    assert unique.loc[cell, "log_steps"] == 391
    assert unique.index.is_unique


def test_iterations_become_epochs_per_batch_size():
    table = grid.membership(config_for("paper"))
    fig4 = table[table["figure"] == "fig4"].set_index("batch_size")
    # 500k iterations on CIFAR-10's 50k images: 1563 / 391 / 49 / 13 steps per epoch.
    assert fig4["panel_epochs"].to_dict() == {32: 320, 128: 1279, 1024: 10205, 4096: 38462}
    assert fig4["panel_log_steps"].to_dict() == {32: 1563, 128: 391, 1024: 49, 4096: 13}


def test_imagenet_rows_are_kept_but_disabled():
    off = grid.runs(config_for("paper"))
    on = grid.runs(config_for("paper", imagenet={"enabled": True, "root": "/x"}))
    imagenet = off[off["dataset"] == "imagenet"]
    assert len(imagenet) == 2 and not imagenet["enabled"].any()
    assert on[on["dataset"] == "imagenet"]["enabled"].all()


def test_unknown_preset_names_the_key():
    with pytest.raises(grid.ConfigError, match="preset: 'nope'.*paper, quick"):
        grid.runs(config_for("nope"))


def test_a_bundle_command_carries_each_run():
    runs = grid.runs(config_for("paper"))
    sgd, agd = (runs[runs["run"] == run] for run in ("fcn-cifar10-mse/d8-w256-bs128/sgd-lr1e-01/seed0",
                                                      "resnet18-cifar10-mse/w64-bs128/agd/seed0"))
    command = bundle_command(pd.concat([sgd, agd]), CONFIG["presets"]["paper"], CONFIG)
    assert command.startswith("--device cuda --threads 4 --data-dir data --keep-checkpoint --member ")
    sgd_flags, agd_flags = command.split(" --member ")[1:]
    for part in ("--arch fcn", "--dataset cifar10", "--optimizer sgd", "--lr 0.1", "--depth 8", "--width 256",
                 "--train-bs 128", "--epochs 2000"):
        assert part in sgd_flags
    assert "--lr" not in agd_flags and "--depth" not in agd_flags


def test_imagenet_runs_ask_for_several_gpus():
    runs = grid.runs(config_for("paper", imagenet={"enabled": True, "root": "/x"})).set_index("run")
    assert (runs[runs["dataset"] == "imagenet"]["gpus"] == 8).all()
    assert (runs[runs["dataset"] != "imagenet"]["gpus"] == 1).all()


def test_the_smoke_run_keeps_every_run_and_its_sizes_but_two_steps_long():
    from agd.optim import registry
    from agd.plan import config as schema, lm_grid, peers, smoke

    real = copy.deepcopy(CONFIG)
    schema.validate(real)
    test = copy.deepcopy(real)
    notes = smoke.apply(test)
    assert notes == ["showcase/imagenet: batch size [1024] -> [32] to fit a CPU's memory",
                     "fig1/imagenet: batch size [1024] -> [32] to fit a CPU's memory",
                     "peers/gpt_shakespeare: 64 x 1 sequences per step -> 1 x 1 to take seconds on a CPU, not a minute",
                     "peers: evaluation seeds [1, 2, 3] -> [1] (a seed changes no shape or argument)",
                     "transformer/shakespeare_char: 64 x 1 sequences per step -> 1 x 1 to take seconds on a CPU, "
                     "not a minute",
                     "transformer/gpt2: 12 x 40 sequences per step -> 1 x 1 to fit a CPU's memory"]
    assert test["presets"]["paper"]["device"] == "cpu" and test["imagenet"]["enabled"]
    # The peers block keeps every cell, optimizer and role, on one evaluation seed.
    kinds = ["panel", "optimizer", "role", "init", "lr", "d_coef", "gain"]
    full, cut = peers.membership(real["presets"]["paper"]), peers.membership(test["presets"]["paper"])
    assert set(map(tuple, cut[kinds].astype(str).values)) == set(map(tuple, full[kinds].astype(str).values))
    assert set(cut["seed"]) == {0, 1} and len(cut) < len(full)
    real["imagenet"]["enabled"] = True
    def figures(config):
        without_peers = copy.deepcopy(config)
        del without_peers["presets"]["paper"]["peers"]
        return grid.runs(without_peers)

    runs, smoke_runs = figures(real), figures(test)
    assert len(smoke_runs) == len(runs) == 93 and (smoke_runs["epochs"] == 1).all()
    sizes = ["arch", "dataset", "depth", "width", "optimizer", "lr", "seed"]
    assert smoke_runs[sizes].equals(runs[sizes])
    kept = runs["dataset"] != "imagenet"
    assert smoke_runs.loc[kept, "batch_size"].equals(runs.loc[kept, "batch_size"])
    lm = lm_grid.runs(test, lm_grid.FIGURE)
    assert len(lm) == 4 and (lm["max_iters"] == 2).all()
    assert (lm["batch_size"] == 1).all() and (lm["grad_accum"] == 1).all()
    real_lm = lm_grid.runs(real, lm_grid.FIGURE)  # the model of every GPT is kept: only its batch is one sequence
    model = ["text", "n_layer", "n_head", "n_embd", "block_size", "optimizer"]
    assert lm[model].reset_index(drop=True).equals(real_lm[model].reset_index(drop=True))
    gpt_cell = lm_grid.runs(test)  # with the peers' GPT cell: every optimizer that trains a GPT, two iterations
    assert (gpt_cell["max_iters"] == 2).all() and set(gpt_cell["optimizer"]) == set(registry.names(registry.LM))
    assert "--synthetic-data" in bundle_command(smoke_runs.iloc[:1], test["presets"]["paper"], test)
