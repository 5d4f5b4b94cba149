"""The training jobs' memory check (agd.jobs.memory), made while planning: a run whose model cannot fit in the
memory of the device it would train on is refused, naming its figure and panel, before any job starts.

Counted without torch (agd.models.size): FCNs and GPTs exactly, conv nets from below. The device is known where
the workflow runs its jobs itself: this machine's RAM for a CPU preset, its smallest GPU for a CUDA one (from
nvidia-smi). On a machine without a GPU (a cluster's login node) a CUDA preset is left to each job's own check.
"""

import os
import shutil
import subprocess
from collections.abc import Mapping

import pandas as pd

from agd.data.catalog import dataset_info
from agd.models.size import CONV_WIDTH_SQUARED, fcn_parameters, lm_parameters, too_large
from agd.plan.specs import ImageRun, LMRun


def capacity(device: str) -> tuple[int, str] | None:
    """Bytes of memory of the device runs would train on here, and its name; None where it is not known."""
    if device == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "cpu"
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        return None
    try:
        listed = subprocess.run([nvidia_smi, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                                capture_output=True, text=True, check=True, timeout=60).stdout.split()
        return min(int(mib) for mib in listed) * 2**20, "cuda"
    except (OSError, subprocess.SubprocessError, ValueError):  # no driver, or no GPU listed
        return None


def image_run_size(row: Mapping) -> tuple[int, str]:
    """An image run's parameter count (a conv net's from below) and the flags that set it."""
    width = int(row["width"])
    if row["arch"] == "fcn":
        info = dataset_info(row["dataset"])
        channels, height, side = info.input_shape
        return (fcn_parameters(channels * height * side, info.num_classes, int(row["depth"]), width, bool(row["bias"])),
                f"--depth {int(row['depth'])} --width {width}")
    return CONV_WIDTH_SQUARED[row["arch"]] * width * width, f"--arch {row['arch']} --width {width}"


def lm_run_size(row: Mapping) -> tuple[int, str]:
    return (lm_parameters(int(row["n_layer"]), int(row["n_embd"]), int(row["block_size"]), bool(row["bias"])),
            f"--n-layer {int(row['n_layer'])} --n-embd {int(row['n_embd'])}")


def memory_problem(members: pd.DataFrame, lm_members: pd.DataFrame, device: str) -> str | None:
    """The first planned run whose model cannot fit on `device` here, as the job would say it, or None."""
    found = capacity(device)
    if found is None:
        return None
    have, where = found
    for table, size, spec in ((members, image_run_size, ImageRun), (lm_members, lm_run_size, LMRun)):
        if table.empty:
            continue
        for row in table[table["enabled"]].drop_duplicates("run").to_dict("records"):
            parameters, flags = size(row)
            problem = too_large(parameters, have, where, flags)
            if problem:
                return (f"config.yaml: figure {row['figure']}, panel {row['panel']}: {spec.program} would refuse a "
                        f"run of it: {problem}")
    return None
