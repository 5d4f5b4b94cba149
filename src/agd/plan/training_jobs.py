"""The training jobs of the workflow, each known by the manifest it writes: a bundle of the run table
(agd.plan.bundles), a bundle of the init check's runs (agd.plan.init_check), or the runs a tuning study of the peers
block adds once it has decided (agd.plan.peers).
All are runs of agd.jobs.bundle, started by the workflow's one training rule, which reads here what each trains."""

import dataclasses
from collections.abc import Mapping

import pandas as pd

from agd.plan.bundles import PRIORITY, priority, shares_gpu
from agd.plan.specs import ImageRun
from agd.plan.table import member, unique_runs
from agd.plan.workflow import bundle_command


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    flags: str                  # agd.jobs.bundle's command line, without --manifest
    dataset: str
    gpus: int                   # the GPUs it trains on, where the preset trains on CUDA
    shared: bool                # it takes one job slot of a GPU (FCN bundles), not whole GPUs
    costs: tuple[dict, ...]     # what it trains, as run-table rows: for its time limit and memory
    priority: int = PRIORITY["rest"]  # Snakemake's: the tuning stage's jobs first (agd.plan.bundles)


def bundles(runs: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str, bundles_dir: str,
            membership: pd.DataFrame | None = None) -> dict[str, TrainingJob]:
    """{manifest: job} for each bundle of a run table (with its `bundle` column); `membership` (the run table's)
    says which bundles hold a tuning study's runs."""
    jobs = {}
    for name, members in runs.groupby("bundle"):
        jobs[f"{bundles_dir}/{name}.json"] = TrainingJob(
            flags=bundle_command(members, preset, config, runs_dir),
            dataset=members["dataset"].iloc[0],
            gpus=int(members["gpus"].max()),
            shared=shares_gpu(members.to_dict("records")),
            costs=tuple(members.to_dict("records")),
            priority=priority(members, membership) if membership is not None else PRIORITY["rest"],
        )
    return jobs


def of_runs(specs: list[ImageRun], preset: Mapping, config: Mapping, runs_dir: str, kind: str) -> TrainingJob:
    """The job that trains `specs` (runs of one dataset) as one bundle: a job the plan knows of only once a
    tuning study has decided, of `kind` "extension" (of its grid) or "chosen" (its chosen rate's runs)."""
    rows = unique_runs(pd.DataFrame([member(spec, gpus=1, enabled=True) for spec in specs]), ImageRun)
    records = rows.to_dict("records")
    return TrainingJob(
        flags=bundle_command(rows, preset, config, runs_dir),
        dataset=records[0]["dataset"],
        gpus=1,
        shared=shares_gpu(records),
        costs=tuple(records),
        priority=PRIORITY[kind],
    )
