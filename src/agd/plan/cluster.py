"""What a training job asks of a SLURM cluster (time, memory), and the checks made before submitting any."""

import math
import re
import shutil
import subprocess
from collections.abc import Mapping

import numpy as np

from agd.data.catalog import dataset_info

# Seconds per training image for one epoch (training plus its evaluation): per million weights for the FCN,
# at base width 64 for conv nets (their cost grows with width squared).
# GPU: paper_spec §7.2's upper estimates on one H100, less the per-step cost below (conv nets: 2000
# epochs at batch 128; FCN: Fig. 4's 5e5 steps at batch 4096 in 1.5 h).
GPU_SECONDS_PER_IMAGE = {"fcn": 1e-7, "vgg16": 7e-5, "resnet18": 1.3e-4, "resnet50": 3.5e-4}
# mnist5k is the CPU preset's dataset: measured on one thread (FCN 32x512, conv nets at width 4).
CPU_SECONDS_PER_IMAGE = {"fcn": 6e-4, "vgg16": 0.26, "resnet18": 0.77, "resnet50": 1.54}
CPU_DATASETS = ("mnist5k",)
# ImageNet epochs are bound by JPEG decoding (~1.5k images/s on 16 cores), whatever the net.
IMAGENET_SECONDS_PER_IMAGE = 7e-4
# Kernel launches and AGD's host sync: what dominates a small net's epoch at small batch sizes.
SECONDS_PER_STEP = 4e-3
STARTUP_SECONDS = 120  # imports, data onto the device, the epoch-0 measurement
SAFETY = 2
FLOOR_MINUTES = 10


def fcn_million_weights(run: Mapping) -> float:
    info = dataset_info(run["dataset"])
    inputs = math.prod(info.input_shape)
    width, depth = int(run["width"]), int(run["depth"])
    return (inputs * width + (depth - 2) * width**2 + width * info.num_classes) / 1e6


def seconds_per_image(run: Mapping) -> float:
    if run["dataset"] == "imagenet":
        return IMAGENET_SECONDS_PER_IMAGE
    table = CPU_SECONDS_PER_IMAGE if run["dataset"] in CPU_DATASETS else GPU_SECONDS_PER_IMAGE
    if run["arch"] == "fcn":
        return table["fcn"] * fcn_million_weights(run)
    return table[run["arch"]] * (int(run["width"]) / 64) ** 2


def gpus(run: Mapping) -> int:
    return max(1, int(run.get("gpus", 1)))


def epoch_seconds(run: Mapping) -> float:
    """Data-parallel runs split the images over their GPUs; every GPU still takes every step."""
    images = dataset_info(run["dataset"]).train_size
    steps = math.ceil(images / int(run["batch_size"]))
    return images * seconds_per_image(run) / gpus(run) + steps * SECONDS_PER_STEP


def training_seconds(run: Mapping) -> float:
    """A run's estimated training time, its epoch 0 (the pass at init) included."""
    return (int(run["epochs"]) + 1) * epoch_seconds(run)


def runtime_minutes(run: Mapping, attempt: int = 1) -> int:
    """SLURM time limit of a run's training job; a retry after a timeout resumes with more time."""
    return limit_minutes(STARTUP_SECONDS + training_seconds(run), attempt)


def bundle_seconds(runs: list[Mapping]) -> float:
    """A bundle's estimated time (agd.jobs.bundle): one start-up, then its runs as if one after another (runs
    stepped together finish sooner)."""
    return STARTUP_SECONDS + sum(training_seconds(run) for run in runs)


def bundle_runtime_minutes(runs: list[Mapping], attempt: int = 1) -> int:
    """SLURM time limit of a bundle; a retry after a timeout resumes with more time."""
    return limit_minutes(bundle_seconds(runs), attempt)


def limit_minutes(seconds: float, attempt: int) -> int:
    return max(FLOOR_MINUTES, math.ceil(seconds / 60 * SAFETY)) * attempt


def mem_mb(run: Mapping) -> int:
    """Host memory of a run's training job: torch and the data per process (one per GPU), plus ImageNet's loaders."""
    if run["dataset"] == "mnist5k":
        return 2_000  # CPU runs peak at about 1 GB
    return (16_000 if run["dataset"] == "imagenet" else 8_000) * gpus(run)


# --- transformer runs: compute from the 6N FLOPs per trained token (2N per evaluated token) ---

# Sustained training throughput per device in FLOP/s: an H100 in bf16 at ~40% utilisation; one CPU
# thread in float32 as measured on the quick preset's GPT (25k tokens/s at ~0.68 MFLOP per trained token).
GPU_FLOPS = 8e13
CPU_FLOPS = 1.5e10


def gpt_flops_per_token(run: Mapping) -> float:
    """Forward FLOPs per token: 2 per weight (blocks and the output head) plus attention over the block."""
    d, layers = int(run["n_embd"]), int(run["n_layer"])
    vocab = 50304 if run["text"] == "openwebtext" else 256
    weights = 12 * layers * d * d + vocab * d
    return 2 * weights + 2 * layers * int(run["block_size"]) * d


def lm_training_seconds(run: Mapping, device: str = "cuda") -> float:
    """A transformer run's estimated training time, its evaluations included."""
    sequence = int(run["batch_size"]) * int(run["block_size"])
    trained = int(run["max_iters"]) * int(run["grad_accum"]) * sequence
    held_out = run.get("test_split")  # a run-table row holds numpy's bool; a row of a table without it, NaN
    splits = 3 if isinstance(held_out, (bool, np.bool_)) and held_out else 2  # train, validation, held-out test
    evaluated = (int(run["max_iters"]) // int(run["eval_interval"]) + 2) * splits * int(run["eval_iters"]) * sequence
    flops = gpt_flops_per_token(run) * (3 * trained + evaluated)
    return flops / (GPU_FLOPS * gpus(run) if device == "cuda" else CPU_FLOPS)


def lm_bundle_seconds(runs: list[Mapping], device: str = "cuda") -> float:
    """A bundle of transformer runs' estimated time (agd.jobs.lm_bundle): one start-up, then its runs one after
    another."""
    return STARTUP_SECONDS + sum(lm_training_seconds(run, device) for run in runs)


def lm_bundle_runtime_minutes(runs: list[Mapping], attempt: int = 1, device: str = "cuda") -> int:
    """SLURM time limit of a bundle of transformer runs; a retry after a timeout resumes with more time."""
    return limit_minutes(lm_bundle_seconds(runs, device), attempt)


def lm_mem_mb(run: Mapping) -> int:
    """Host memory of a transformer job: the token memmap's page cache counts on big texts."""
    return (16_000 if run["text"] == "openwebtext" else 4_000) * gpus(run)


# --- checks before the first submission ---

PLACEHOLDER = re.compile(r"^<.*>$")
PROFILE = "profiles/slurm/profile.yaml (and its copy config.yaml)"


def cluster_gres() -> str | None:
    """`sinfo -h -o %G`: the generic resources of each node group, or None when sinfo cannot say."""
    if shutil.which("sinfo") is None:
        return None
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None
    return result.stdout if result.returncode == 0 else None


def gpus_asked(resources: Mapping) -> int:
    gpu = resources.get("gpu")
    if isinstance(gpu, int) and gpu > 0:
        return gpu
    return 1 if "gpu" in str(resources.get("gres") or "") else 0


def placeholder_problem(rules_resources: Mapping[str, Mapping]) -> str | None:
    found = {}
    for rule, resources in rules_resources.items():
        for name in ("slurm_account", "slurm_partition"):
            value = resources.get(name)
            if isinstance(value, str) and PLACEHOLDER.match(value.strip()):
                found.setdefault((name, value), []).append(rule)
    if not found:
        return None
    listed = "; ".join(f"{name}: {value!r} (rule {', '.join(rules)})" for (name, value), rules in found.items())
    return (f"the SLURM profile still holds placeholders: {listed}. Edit {PROFILE}: set slurm_account under "
            "default-resources to your account (`sacctmgr show assoc user=$USER format=account`; delete the line "
            "if your cluster has no accounts) and slurm_partition to your partitions (`sinfo -s`), the GPU one "
            "under set-resources: train; or override them with --default-resources / --set-resources")


def gpu_problem(rules_resources: Mapping[str, Mapping], gres: str | None) -> str | None:
    gpu_rules = [rule for rule, resources in rules_resources.items() if gpus_asked(resources)]
    if not gpu_rules or gres is None or "gpu" in gres:
        return None
    return (f"rule {', '.join(gpu_rules)} asks for a GPU but the cluster has no GPUs (sinfo -o %G lists no gpu "
            "gres on any node): use --config preset=quick with --set-resources train:gpu=0 to train "
            f"on CPUs, or set a GPU partition as slurm_partition under set-resources: train in {PROFILE}")


def submitted_resources(workflow) -> dict[str, Mapping]:
    """Per rule, the resources of one job that the cluster will be sent: the one asking for the most GPUs."""
    chosen = {}
    for job in workflow.dag.needrun_jobs():
        if job.is_local:
            continue
        resources = dict(job.resources.items())
        if gpus_asked(resources) >= gpus_asked(chosen.get(job.rule.name, {})):
            chosen[job.rule.name] = resources
    return chosen


def slurm_problem(workflow, rules_resources: Mapping[str, Mapping], sinfo_gres: str | None = None) -> str | None:
    """Checked before the first submission with the slurm executor: what to edit, not a job that never runs.

    rules_resources maps each rule that will be submitted to the resources of its jobs; sinfo_gres is the
    output of `sinfo -h -o %G` (asked of the cluster when not given).
    """
    if workflow.executor_plugin.name != "slurm":
        return None
    gres = sinfo_gres if sinfo_gres is not None else cluster_gres()
    return placeholder_problem(rules_resources) or gpu_problem(rules_resources, gres)
