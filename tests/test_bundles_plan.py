"""The planner's bundles: every run in one training job, jobs that serve one set of figures, runs of one shape
side by side, and the preset's size and time limits."""

import copy
import shlex
from pathlib import Path

import pytest
import yaml

from agd.jobs import arguments, bundle
from agd.plan import bundles, cluster, grid, training_jobs
from agd.plan import config as config_schema
from agd.plan import workflow as pipeline
from agd.plan.specs import ImageRun

CONFIG = yaml.safe_load((Path(__file__).parents[1] / "config.yaml").read_text())


def planned(preset: str, **preset_changes) -> tuple[dict, object]:
    config = copy.deepcopy(CONFIG)
    config["preset"] = preset
    config["presets"][preset].update(preset_changes)
    config_schema.validate(config)
    return config, bundles.table(grid.runs(config), grid.membership(config), config["presets"][preset])


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_every_run_sits_in_one_bundle_within_the_limits(preset):
    config, runs = planned(preset)
    settings = config["presets"][preset]
    figures = grid.membership(config).groupby("run")["figure"].agg(frozenset)
    for name, members in runs.groupby("bundle"):
        assert len(members) <= settings["bundle_size"]
        assert members["dataset"].nunique() == members["arch"].nunique() == 1
        assert len({figures[run] for run in members["run"]}) == 1  # asking for a figure trains its runs only
        if len(members) > 1:
            seconds = sum(cluster.training_seconds(run) for run in members.to_dict("records"))
            assert seconds <= 60 * settings["bundle_minutes"]
            assert (members["gpus"] == 1).all() and members["enabled"].all()
    assert runs["run"].is_unique


def test_the_quick_preset_starts_at_most_a_third_as_many_training_jobs_as_it_has_runs():
    config, runs = planned("quick")
    enabled = runs[runs["enabled"]]
    lm_runs = 2
    assert enabled["bundle"].nunique() + lm_runs <= (len(enabled) + lm_runs) / 3


def test_a_bundle_of_one_is_a_process_per_run():
    _, runs = planned("quick", bundle_size=1)
    assert runs["bundle"].is_unique


def test_names_are_stable_and_name_their_runs():
    _, first = planned("quick")
    _, again = planned("quick")
    assert first["bundle"].tolist() == again["bundle"].tolist()
    _, wider = planned("quick", bundle_size=4)
    assert set(wider["bundle"]) != set(first["bundle"])


@pytest.mark.parametrize("preset", ["quick", "paper"])
def test_each_bundle_command_parses_back_to_its_runs(preset):
    config, runs = planned(preset)
    for name, members in runs[runs["enabled"]].groupby("bundle"):
        argv = shlex.split(pipeline.bundle_command(members, config["presets"][preset], config))
        own, execution = bundle.build_parser().parse_known_args(argv)
        parsed = {}
        for out, flags in own.member:
            args = arguments.build_parser().parse_args([*shlex.split(flags), *execution, "--out", out])
            parsed[out] = ImageRun.from_args(args).filled()
        assert parsed == {f"{pipeline.RUNS_DIR}/{row['run']}": ImageRun.from_row(row)
                          for row in members.to_dict("records")}


def test_a_bundle_asks_for_the_sum_of_its_runs_time_once_started():
    _, runs = planned("paper")
    records = runs[runs["enabled"]].to_dict("records")[:3]
    alone = [cluster.runtime_minutes(run) for run in records]
    together = cluster.bundle_runtime_minutes(records)
    assert max(alone) < together < sum(alone)
    assert cluster.bundle_runtime_minutes(records, attempt=2) == 2 * together


def test_a_tuning_studys_runs_share_few_bundles_which_run_first():
    config, runs = planned("quick")
    membership = grid.membership(config)
    tuning = bundles.tuning_runs(membership)
    holding = runs[runs["run"].isin(tuning)].groupby("bundle")
    cells = membership.loc[membership["role"] == "tuning", "panel"].nunique()
    assert 0 < holding.ngroups <= cells  # one bundle per cell: its grid runs come first among its shape's runs
    jobs = training_jobs.bundles(runs, config["presets"]["quick"], config, "results/runs", "results/bundles",
                                 membership)
    priorities = {path.split("/")[-1][:-5]: job.priority for path, job in jobs.items()}
    assert {priorities[name] for name in holding.groups} == {bundles.PRIORITY["tuning"]}
    assert {priorities[name] for name in set(runs["bundle"]) - set(holding.groups)} == {bundles.PRIORITY["rest"]}
