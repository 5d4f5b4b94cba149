"""Training jobs of several runs: the planner groups a preset's image runs into bundles, each trained by one
process (agd.jobs.bundle), which steps the runs that share a network shape and batch size together; and its GPT
runs likewise, one after another in one process (agd.jobs.lm_bundle), grouped by text.

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from agd.plan import cluster
from agd.plan.peers import TUNING
from agd.plan.specs import ImageRun, RunSpec

# Snakemake's priority of a training job: the tuning stage's jobs before the rest, a study's next round first.
PRIORITY = {"extension": 3, "chosen": 2, "tuning": 1, "rest": 0}


@dataclass(frozen=True)
class Grouping:
    """How one job's runs are bundled: the settings runs of one bundle share, their order within it, the estimated
    seconds of a run on a device, and the start of a bundle's name."""

    key: list[str]
    order: list[str]
    seconds: Callable[[Mapping, str], float]
    prefix: Callable[[Mapping], str]


# Images: shape and batch size first (runs stepped together). GPTs: one text and model.
IMAGE = Grouping(["figures", "dataset", "arch", "loss", "gpus", "enabled"],
                 ["batch_size", "depth", "width", "bias", "later", "optimizer", "lr", "seed", "run"],
                 lambda run, device: cluster.training_seconds(run),
                 lambda run: f"{run['arch']}-{run['dataset']}-{run['loss']}")
GPT = Grouping(["figures", "text", "gpus", "enabled"],
               ["n_layer", "n_head", "n_embd", "block_size", "later", "optimizer", "lr", "seed", "run"],
               cluster.lm_training_seconds,
               lambda run: f"gpt-{run['text']}")


def shares_gpu(runs: list[Mapping]) -> bool:
    """Whether the job training `runs` takes one job slot of a GPU (FCNs, one GPU each) rather than whole GPUs."""
    return all(run["arch"] == "fcn" and int(run["gpus"]) == 1 for run in runs)


def bundle_name(runs: list[Mapping], grouping: Grouping = IMAGE) -> str:
    digest = hashlib.sha1("\n".join(sorted(run["run"] for run in runs)).encode()).hexdigest()[:10]
    return f"{grouping.prefix(runs[0])}-{digest}"


def assign(runs: pd.DataFrame, size: int, minutes: float, grouping: Grouping = IMAGE,
           device: str = "cuda") -> pd.Series:
    """Each run's bundle (indexed like `runs`)."""
    names = pd.Series(index=runs.index, dtype=object)
    order = [column for column in grouping.order if column in runs]  # `later` where the runs come from a run table
    for _, group in runs.groupby(grouping.key, sort=True, dropna=False):
        group = group.sort_values(order, na_position="first")
        shared = bool(group["enabled"].iloc[0]) and int(group["gpus"].iloc[0]) == 1
        bundles, current, seconds = [], [], 0.0
        for index, run in group.iterrows():
            cost = grouping.seconds(run, device)
            full = len(current) >= (size if shared else 1) or (current and seconds + cost > 60 * minutes)
            if full:
                bundles.append(current)
                current, seconds = [], 0.0
            current.append(index)
            seconds += cost
        bundles.append(current)
        for members in bundles:
            names[members] = bundle_name(runs.loc[members].to_dict("records"), grouping)
    return names


def table(runs: pd.DataFrame, membership: pd.DataFrame, preset: Mapping, grouping: Grouping = IMAGE) -> pd.DataFrame:
    """The run table (image runs, or GPT runs with `GPT`) with each run's `bundle`, from the preset's bundle_size
    and bundle_minutes."""
    if runs.empty:
        return runs.assign(bundle=pd.Series(dtype=object))
    figures = membership.groupby("run")["figure"].agg(lambda names: " ".join(sorted(set(names))))
    keyed = runs.assign(figures=runs["run"].map(figures), later=~runs["run"].isin(tuning_runs(membership)))
    return runs.assign(bundle=assign(keyed, int(preset["bundle_size"]), float(preset["bundle_minutes"]), grouping,
                                     preset["device"]))


def tuning_runs(membership: pd.DataFrame) -> set[str]:
    """The runs a tuning study chooses from."""
    if "role" not in membership:  # a preset without a peers block
        return set()
    return set(membership.loc[membership["role"] == TUNING, "run"])


def priority(runs: pd.DataFrame, tuning: set[str]) -> int:
    """A bundle of the run table that holds a tuning study's runs (`tuning_runs`) goes first."""
    return PRIORITY["tuning" if runs["run"].isin(tuning).any() else "rest"]


def member_args(runs: pd.DataFrame, runs_dir: str, spec: type[RunSpec] = ImageRun) -> list[str]:
    """A bundle's --member arguments for its runs (of `spec`): each run's directory and its flags."""
    args = []
    for row in runs.to_dict("records"):
        args += ["--member", f"{runs_dir}/{row['run']}", shlex.join(spec.from_row(row).argv())]
    return args
