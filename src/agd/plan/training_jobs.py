"""The training jobs of the workflow, each known by the manifest it writes: a bundle of the image run table
(agd.plan.bundles) or of the GPT run table, a bundle of the init check's runs (agd.plan.init_check), or the runs a
tuning study of the peers block adds once it has decided (agd.plan.peers).
All are runs of agd.jobs.bundle (image runs) or agd.jobs.lm_bundle (GPT runs), started by the workflow's one
training rule, which reads here what each trains."""

import dataclasses
from collections.abc import Mapping

import pandas as pd

from agd.plan import cluster
from agd.plan.bundles import PRIORITY, priority, shares_gpu, tuning_runs
from agd.plan.specs import BUNDLE_MODULE, LM_BUNDLE_MODULE, ImageRun, LMRun, RunSpec
from agd.plan.table import member, unique_runs
from agd.plan.workflow import bundle_command, lm_bundle_command


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    flags: str                  # the module's command line, without --manifest
    module: str                 # agd.jobs.bundle or agd.jobs.lm_bundle
    spec: type[RunSpec]         # what its runs are
    data: str                   # the dataset (image runs) or text (GPT runs) it trains on
    gpus: int                   # the GPUs it trains on, where the preset trains on CUDA
    shared: bool                # it takes one job slot of a GPU (FCN bundles), not whole GPUs
    seconds: float              # its estimated time (agd.plan.cluster), its start-up included
    mem_mb: int                 # its host memory
    priority: int = PRIORITY["rest"]  # Snakemake's: the tuning stage's jobs first (agd.plan.bundles)

    def runtime(self, attempt: int) -> int:
        """Its time limit on a cluster: a retry after a timeout resumes with more."""
        return cluster.limit_minutes(self.seconds, attempt)


def job(rows: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str, spec: type[RunSpec],
        job_priority: int) -> TrainingJob:
    """The job that trains the run-table rows `rows` (runs of one dataset or text) as one bundle."""
    records = rows.to_dict("records")
    if spec is LMRun:
        return TrainingJob(
            flags=lm_bundle_command(rows, preset, config, runs_dir), module=LM_BUNDLE_MODULE, spec=spec,
            data=records[0]["text"], gpus=int(rows["gpus"].max()), shared=False,
            seconds=cluster.lm_bundle_seconds(records, preset["device"]),
            mem_mb=max(cluster.lm_mem_mb(run) for run in records), priority=job_priority)
    return TrainingJob(
        flags=bundle_command(rows, preset, config, runs_dir), module=BUNDLE_MODULE, spec=spec,
        data=records[0]["dataset"], gpus=int(rows["gpus"].max()), shared=shares_gpu(records),
        seconds=cluster.bundle_seconds(records), mem_mb=max(cluster.mem_mb(run) for run in records),
        priority=job_priority)


def bundles(runs: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str, bundles_dir: str,
            membership: pd.DataFrame | None = None, spec: type[RunSpec] = ImageRun) -> dict[str, TrainingJob]:
    """{manifest: job} for each bundle of a run table (with its `bundle` column) of `spec`'s runs; `membership`
    (the run table's) says which bundles hold a tuning study's runs."""
    tuning = tuning_runs(membership) if membership is not None else set()
    return {f"{bundles_dir}/{name}.json": job(members, preset, config, runs_dir, spec, priority(members, tuning))
            for name, members in runs.groupby("bundle")}


def of_runs(specs: list[RunSpec], preset: Mapping, config: Mapping, runs_dir: str, kind: str) -> TrainingJob:
    """The job that trains `specs` (runs of one dataset or text) as one bundle: a job the plan knows of only once a
    tuning study has decided, of `kind` "extension" (of its grid) or "chosen" (its chosen rate's runs)."""
    spec = type(specs[0])
    rows = unique_runs(pd.DataFrame([member(run, gpus=1, enabled=True) for run in specs]), spec)
    return job(rows, preset, config, runs_dir, spec, PRIORITY[kind])
