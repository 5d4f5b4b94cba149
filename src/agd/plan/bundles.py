"""Training jobs of several runs: the planner groups a preset's image runs into bundles, each trained by one
process (agd.jobs.bundle), which steps the runs that share a network shape and batch size together.

Runs of one dataset and architecture that serve the same figures share jobs (so that asking for one figure
trains its runs and no others), in the order of their shape and batch size (so that runs that can be stepped
together sit in one bundle), up to the preset's `bundle_size` runs and `bundle_minutes` of estimated training
time (agd.plan.cluster) per job. Runs that train data-parallel on several GPUs, and runs
the config turns off, are bundles of one. A bundle's name is its dataset, architecture and a digest of its
runs: a bundle whose runs change is a new job, and the runs it holds that have finished are skipped.

The runs a tuning study of the peers block chooses from (its grid on the tuning seed) come first among the runs
of their shape, so that they sit in few bundles, which the workflow runs before the others (`PRIORITY`): a study's
next rounds, each a short job of its own, then overlap the bulk of the training instead of trailing it.
"""

import hashlib
import shlex
from collections.abc import Mapping

import pandas as pd

from agd.plan import cluster
from agd.plan.peers import TUNING
from agd.plan.specs import ImageRun

# Runs that may share a job, and the order within it (shape and batch size first: runs stepped together).
JOB_KEY = ["figures", "dataset", "arch", "loss", "gpus", "enabled"]
ORDER = ["batch_size", "depth", "width", "bias", "later", "optimizer", "lr", "seed", "run"]
# Snakemake's priority of a training job: the tuning stage's jobs before the rest, a study's next round first.
PRIORITY = {"extension": 3, "chosen": 2, "tuning": 1, "rest": 0}


def shares_gpu(runs: list[Mapping]) -> bool:
    """Whether the job training `runs` takes one job slot of a GPU (FCNs, one GPU each) rather than whole GPUs."""
    return all(run["arch"] == "fcn" and int(run["gpus"]) == 1 for run in runs)


def bundle_name(runs: list[Mapping]) -> str:
    first = runs[0]
    digest = hashlib.sha1("\n".join(sorted(run["run"] for run in runs)).encode()).hexdigest()[:10]
    return f"{first['arch']}-{first['dataset']}-{first['loss']}-{digest}"


def assign(runs: pd.DataFrame, size: int, minutes: float) -> pd.Series:
    """Each run's bundle (indexed like `runs`)."""
    names = pd.Series(index=runs.index, dtype=object)
    order = [column for column in ORDER if column in runs]  # `later` where the runs come from a run table
    for _, group in runs.groupby(JOB_KEY, sort=True, dropna=False):
        group = group.sort_values(order, na_position="first")
        shared = bool(group["enabled"].iloc[0]) and int(group["gpus"].iloc[0]) == 1
        bundles, current, seconds = [], [], 0.0
        for index, run in group.iterrows():
            cost = cluster.training_seconds(run)
            full = len(current) >= (size if shared else 1) or (current and seconds + cost > 60 * minutes)
            if full:
                bundles.append(current)
                current, seconds = [], 0.0
            current.append(index)
            seconds += cost
        bundles.append(current)
        for members in bundles:
            names[members] = bundle_name(runs.loc[members].to_dict("records"))
    return names


def table(runs: pd.DataFrame, membership: pd.DataFrame, preset: Mapping) -> pd.DataFrame:
    """The run table with each run's `bundle`, from the preset's bundle_size and bundle_minutes."""
    if runs.empty:
        return runs.assign(bundle=pd.Series(dtype=object))
    figures = membership.groupby("run")["figure"].agg(lambda names: " ".join(sorted(set(names))))
    keyed = runs.assign(figures=runs["run"].map(figures), later=~runs["run"].isin(tuning_runs(membership)))
    return runs.assign(bundle=assign(keyed, int(preset["bundle_size"]), float(preset["bundle_minutes"])))


def tuning_runs(membership: pd.DataFrame) -> set[str]:
    """The runs a tuning study chooses from."""
    if "role" not in membership:  # a preset without a peers block
        return set()
    return set(membership.loc[membership["role"] == TUNING, "run"])


def priority(runs: pd.DataFrame, membership: pd.DataFrame) -> int:
    """A bundle of the run table that holds a tuning study's runs goes first."""
    return PRIORITY["tuning" if runs["run"].isin(tuning_runs(membership)).any() else "rest"]


def member_args(runs: pd.DataFrame, runs_dir: str) -> list[str]:
    """agd.jobs.bundle's --member arguments for a bundle's runs: each run's directory and its flags."""
    args = []
    for row in runs.to_dict("records"):
        args += ["--member", f"{runs_dir}/{row['run']}", shlex.join(ImageRun.from_row(row).argv())]
    return args
