"""The transformer block of config.yaml: its run table, the training commands, cluster estimates, the workflow."""

import shlex

import pandas as pd
import pytest
import yaml

from agd.jobs import lm_arguments, lm_bundle
from agd.plan import bundles, cluster, lm_grid
from agd.plan import workflow as pipeline
from agd.plan.grid import ConfigError
from agd.optim import registry
from agd.plan.specs import LMRun
from test_workflow import CONFIG, REPO, planned, snakemake, with_preset


def test_quick_preset_runs_agd_and_adamw_on_the_offline_text():
    runs = lm_grid.runs(with_preset("quick"), lm_grid.FIGURE).set_index("optimizer")
    assert sorted(runs.index) == ["adamw", "agd"]
    assert (runs["text"] == "python_docs_char").all() and runs["enabled"].all()
    assert runs.loc["agd", "run"] == "gpt-python_docs_char/l2-h2-e64-b64/bs32-ga1/agd/seed0"
    assert runs.loc["adamw", "run"] == "gpt-python_docs_char/l2-h2-e64-b64/bs32-ga1/adamw-lr1e-03-wu20/seed0"
    assert pd.isna(runs.loc["agd", "lr"]) and runs.loc["adamw", "min_lr"] == pytest.approx(1e-4)
    assert runs.loc["adamw", "lr_decay_iters"] == runs.loc["adamw", "max_iters"]


def test_paper_preset_has_nanogpts_two_configs_with_openwebtext_gated():
    runs = lm_grid.runs(CONFIG, lm_grid.FIGURE)
    assert len(runs) == 4
    shakespeare = runs[runs["text"] == "shakespeare_char"]
    gpt2 = runs[runs["text"] == "openwebtext"]
    assert shakespeare["enabled"].all() and not gpt2["enabled"].any()
    adamw = shakespeare[shakespeare["optimizer"] == "adamw"].iloc[0]
    assert (adamw["lr"], adamw["min_lr"], adamw["warmup_iters"], adamw["beta2"]) == (1e-3, 1e-4, 100, 0.99)
    assert (adamw["n_layer"], adamw["n_embd"], adamw["block_size"], adamw["batch_size"]) == (6, 384, 256, 64)
    assert adamw["dropout"] == 0.2 and adamw["max_iters"] == 5000
    big = gpt2[gpt2["optimizer"] == "adamw"].iloc[0]
    assert (big["lr"], big["warmup_iters"], big["beta2"], big["grad_accum"], big["gpus"]) == (6e-4, 2000, 0.95, 40, 8)
    enabled = with_preset("paper", openwebtext={"enabled": True, "root": None})
    assert lm_grid.runs(enabled, lm_grid.FIGURE)["enabled"].all()


def test_panels_sharing_a_run_train_it_once_for_the_longest():
    config = with_preset("quick")
    panels = config["presets"]["quick"]["transformer"]["panels"]
    longer = yaml.safe_load(yaml.safe_dump(panels["python_docs_char"]))
    longer["max_iters"] = 800
    longer["optimizers"] = {"agd": None}
    panels["longer"] = longer
    members = lm_grid.membership(config, lm_grid.FIGURE)
    runs = lm_grid.runs(config, lm_grid.FIGURE).set_index("optimizer")
    assert len(members) == 3 and len(runs) == 2
    assert runs.loc["agd", "max_iters"] == 800 and runs.loc["adamw", "max_iters"] == 400


def test_two_panels_with_clashing_adamw_settings_are_refused():
    config = with_preset("quick")
    panels = config["presets"]["quick"]["transformer"]["panels"]
    other = yaml.safe_load(yaml.safe_dump(panels["python_docs_char"]))
    other["optimizers"]["adamw"]["beta2"] = 0.95
    panels["other"] = other
    with pytest.raises(ConfigError, match=r"transformer panel other and transformer panel python_docs_char train "
                                          r"gpt-python_docs_char/.*adamw.* different settings \(beta2: 0.99, 0.95\)"):
        lm_grid.membership(config, lm_grid.FIGURE)


def test_two_panels_that_differ_only_in_their_evaluation_are_refused_by_that_setting():
    config = with_preset("quick")
    panels = config["presets"]["quick"]["transformer"]["panels"]
    other = yaml.safe_load(yaml.safe_dump(panels["python_docs_char"]))
    other["eval_iters"] += 1
    panels["other"] = other
    with pytest.raises(ConfigError, match=r"different settings \(eval_iters: \d+, \d+\)"):
        lm_grid.membership(config, lm_grid.FIGURE)


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_training_commands_parse_back_to_the_run(preset):
    config = with_preset(preset, openwebtext={"enabled": True, "root": "/data/owt"})
    table = bundles.table(lm_grid.runs(config), lm_grid.membership(config), config["presets"][preset], bundles.GPT)
    for _, members in table.groupby("bundle"):
        command = pipeline.lm_bundle_command(members, config["presets"][preset], config)
        own, execution = lm_bundle.build_parser().parse_known_args(shlex.split(command))
        assert [out for out, _ in own.member] == [f"{pipeline.LM_RUNS_DIR}/{run}" for run in members["run"]]
        for (out, flags), run in zip(own.member, members.to_dict("records")):
            # parsed as the job parses them, less its checks of this machine (the paper preset trains on CUDA)
            args = lm_arguments.build_parser().parse_args([*shlex.split(flags), *execution, "--out", out])
            spec = LMRun.from_args(args).filled()
            for key in ("text", "optimizer", "n_layer", "n_head", "n_embd", "block_size", "batch_size", "grad_accum",
                        "max_iters", "eval_interval", "eval_iters", "seed", "dropout"):
                assert getattr(spec, key) == run[key], key
            if registry.get(spec.optimizer).scheduled:
                for key in registry.get(spec.optimizer).settings:
                    assert getattr(spec, key) == pytest.approx(run[key]), key
            assert spec == LMRun.from_row(run)
            assert args.text_root == ("/data/owt" if run["text"] == "openwebtext" else None)


def test_runtime_estimates():
    config = with_preset("paper", openwebtext={"enabled": True})
    runs = lm_grid.runs(config, lm_grid.FIGURE).set_index(["text", "optimizer"], drop=False)
    gpt2 = runs.loc[("openwebtext", "adamw")]
    # nanoGPT's GPT-2 124M: ~4 days on 8 A100s; the limit doubles the estimate.
    days = cluster.lm_bundle_runtime_minutes([gpt2]) / 60 / 24
    assert 5 < days < 12
    assert cluster.lm_bundle_runtime_minutes([gpt2], attempt=2) == 2 * cluster.lm_bundle_runtime_minutes([gpt2])
    shakespeare = [runs.loc[("shakespeare_char", optimizer)] for optimizer in ("agd", "adamw")]
    assert cluster.lm_bundle_runtime_minutes(shakespeare[:1]) == cluster.FLOOR_MINUTES
    assert cluster.lm_bundle_runtime_minutes(shakespeare) < 2 * cluster.FLOOR_MINUTES  # one start-up
    assert cluster.lm_mem_mb(gpt2) == 8 * 16_000


def test_dry_run_plans_the_transformer_figure(tmp_path):
    jobs = planned(snakemake(tmp_path, "-n", "figures/transformer.pdf"))
    assert jobs == {"prepare_text": 1, "train": 1, "aggregate_transformer": 1, "figure": 1}  # its 2 runs: 1 bundle


def test_openwebtext_root_that_does_not_exist_stops_before_any_job(tmp_path):
    config = with_preset("paper", openwebtext={"enabled": True, "root": str(tmp_path / "nowhere")})
    result = snakemake(tmp_path, "-n", "figures/transformer.pdf", config=config)
    assert result.returncode != 0
    assert "openwebtext.root" in result.stdout + result.stderr


def test_openwebtext_enabled_plans_gpt2(tmp_path):
    (tmp_path / "owt").mkdir()
    config = with_preset("paper", openwebtext={"enabled": True, "root": str(tmp_path / "owt")})
    jobs = planned(snakemake(tmp_path, "-n", "figures/transformer.pdf", config=config))
    assert jobs["train"] == 3 and jobs["prepare_text"] == 2  # GPT-2's two 8-GPU runs alone, Shakespeare's together


@pytest.mark.parametrize("path, value, named", [
    ("presets.quick.transformer.panels.python_docs_char.text", "wikitext", "text"),
    ("presets.quick.transformer.panels.python_docs_char.model.n_layer", 0, "n_layer"),
    ("presets.quick.transformer.panels.python_docs_char.optimizers.sgd", [0.1], "sgd"),
    ("presets.quick.transformer.panels.python_docs_char.optimizers.adamw", {"warmup_iters": 10}, "lr"),
])
def test_schema_rejects_bad_transformer_blocks(tmp_path, path, value, named):
    config = with_preset("quick")
    node = config
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    result = snakemake(tmp_path, "-n", config=config)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr


def test_repo_config_is_the_one_tested():
    assert (REPO / "config.yaml").exists() and "transformer" in CONFIG["presets"]["quick"]
