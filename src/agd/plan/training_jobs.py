"""The training jobs of the workflow, each known by the manifest it writes: a bundle of the run table
(agd.plan.bundles), a bundle of the init check's runs (agd.plan.init_check) or a tuned evaluation (agd.plan.peers).
All are runs of agd.jobs.bundle, started by the workflow's one training rule, which reads here what each trains."""

import dataclasses
from collections.abc import Mapping

import pandas as pd

from agd.plan.bundles import shares_gpu
from agd.plan.workflow import bundle_command, tuned_command


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    flags: str                  # agd.jobs.bundle's command line, without --manifest
    dataset: str
    gpus: int                   # the GPUs it trains on, where the preset trains on CUDA
    shared: bool                # it takes one job slot of a GPU (FCN bundles), not whole GPUs
    costs: tuple[dict, ...]     # what it trains, as run-table rows: for its time limit and memory
    after: tuple[str, ...] = ()  # runs of the run table that must have trained first (a tuned evaluation's grid)


def bundles(runs: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str,
            bundles_dir: str) -> dict[str, TrainingJob]:
    """{manifest: job} for each bundle of a run table (with its `bundle` column)."""
    jobs = {}
    for name, members in runs.groupby("bundle"):
        jobs[f"{bundles_dir}/{name}.json"] = TrainingJob(
            flags=bundle_command(members, preset, config, runs_dir),
            dataset=members["dataset"].iloc[0],
            gpus=int(members["gpus"].max()),
            shared=shares_gpu(members.to_dict("records")),
            costs=tuple(members.to_dict("records")),
        )
    return jobs


def tuned_evaluations(evaluations: list[Mapping], runs: pd.DataFrame, preset: Mapping, config: Mapping,
                      bundles_dir: str) -> dict[str, TrainingJob]:
    """{manifest: job} for each tuned evaluation: it trains one grid run's settings per evaluation seed."""
    jobs = {}
    for evaluation in evaluations:
        grid_run = dict(runs.loc[evaluation["candidates"][0]]) | {"epochs": evaluation["epochs"]}
        jobs[f"{bundles_dir}/{evaluation['name']}.json"] = TrainingJob(
            flags=tuned_command(evaluation, preset, config),
            dataset=evaluation["dataset"],
            gpus=1,
            shared=evaluation["arch"] == "fcn",
            costs=(grid_run,) * len(evaluation["seeds"]),
            after=tuple(evaluation["candidates"]),
        )
    return jobs
