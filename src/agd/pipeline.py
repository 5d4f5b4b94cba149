"""What the workflow asks of each run: its training command, its data, and the checks made before any job."""

import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

DOWNLOADABLE = ("cifar10", "cifar100", "mnist")
RUNS_DIR = "results/runs"


def data_marker(dataset: str, data_dir: str) -> list[str]:
    """The file download_data leaves once `dataset` is on disk; nothing for bundled or local sets."""
    return [f"{data_dir}/.{dataset}.ready"] if dataset in DOWNLOADABLE else []


def imagenet_root(config: Mapping) -> str | None:
    return config.get("imagenet", {}).get("root") or os.environ.get("IMAGENET_PATH")


def train_command(run: Mapping, preset: Mapping, config: Mapping) -> str:
    """The agd-train command line of one run (without --out), with the preset's device and threads."""
    args = [
        "--arch", run["arch"], "--dataset", run["dataset"], "--optimizer", run["optimizer"],
        "--loss", run["loss"], "--train-bs", run["batch_size"], "--epochs", run["epochs"],
        "--width", run["width"], "--seed", run["seed"], "--log-steps", run["log_steps"],
        "--device", preset["device"], "--threads", preset.get("threads", 1),
        "--data-dir", config.get("data_dir", "data"),
    ]
    if run["arch"] == "fcn":
        args += ["--depth", run["depth"]]
    if not pd.isna(run["lr"]):
        args += ["--lr", repr(float(run["lr"]))]
    if run["bias"]:
        args.append("--bias")
    if run["dataset"] == "imagenet":
        args += ["--imagenet-root", imagenet_root(config)]
    if config.get("keep_checkpoints", True):
        args.append("--keep-checkpoint")
    return shlex.join(str(a) for a in args)


def python() -> str:
    return shlex.quote(sys.executable)


def imagenet_problem(config: Mapping, runs: pd.DataFrame) -> str | None:
    """Checked when the workflow starts: planned ImageNet runs need the data on disk."""
    if not (runs["enabled"] & (runs["dataset"] == "imagenet")).any():
        return None
    root = imagenet_root(config)
    if not root:
        return ("imagenet.enabled is true but imagenet.root is not set: set imagenet.root in config.yaml "
                "(or $IMAGENET_PATH) to a folder with train/ and val/, or set imagenet.enabled: false")
    missing = [d for d in ("train", "val") if not (Path(root) / d).is_dir()]
    if missing:
        return (f"imagenet.root {root} lacks {' and '.join(missing)}/: it needs train/ and val/ with one "
                "folder per class (ImageNet is never downloaded), or set imagenet.enabled: false")
    return None


def cuda_problem(preset_name: str, preset: Mapping) -> str | None:
    """Checked before local execution: a CUDA preset on a machine without CUDA."""
    if preset["device"] != "cuda":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    return (f"preset {preset_name!r} trains on CUDA but this machine has no CUDA device: run it on a GPU "
            "machine, submit it with --profile profiles/slurm, or use --config preset=quick (CPU)")


# --- transformer runs ---

LM_RUNS_DIR = "results/lm_runs"
LM_ADAMW_FLAGS = ("lr", "min_lr", "warmup_iters", "lr_decay_iters", "beta1", "beta2", "weight_decay", "grad_clip")


def text_root(text: str, config: Mapping) -> str | None:
    return config.get(text, {}).get("root")


def text_root_flag(text: str, config: Mapping) -> str:
    root = text_root(text, config)
    return shlex.join(["--root", root]) if root else ""


def text_marker(text: str, data_dir: str) -> str:
    """The file prepare_text leaves once a text's token files are complete."""
    return f"{data_dir}/{text}/meta.json"


def lm_train_command(run: Mapping, preset: Mapping, config: Mapping) -> str:
    """The agd-train-lm command line of one transformer run (without --out)."""
    args = [
        "--text", run["text"], "--optimizer", run["optimizer"],
        "--n-layer", run["n_layer"], "--n-head", run["n_head"], "--n-embd", run["n_embd"],
        "--block-size", run["block_size"], "--dropout", repr(float(run["dropout"])),
        "--batch-size", run["batch_size"], "--grad-accum", run["grad_accum"], "--max-iters", run["max_iters"],
        "--eval-interval", run["eval_interval"], "--eval-iters", run["eval_iters"], "--seed", run["seed"],
        "--device", preset["device"], "--threads", preset.get("threads", 1),
        "--data-dir", config.get("data_dir", "data"),
    ]
    if run["bias"]:
        args.append("--bias")
    if run["optimizer"] == "adamw":
        for name in LM_ADAMW_FLAGS:
            value = run[name]
            # Columns holding AGD's blanks are float: iteration counts are cast back.
            text = str(int(value)) if name in ("warmup_iters", "lr_decay_iters") else repr(float(value))
            args += [f"--{name.replace('_', '-')}", text]
    if text_root(run["text"], config):
        args += ["--text-root", text_root(run["text"], config)]
    if config.get("keep_checkpoints", True):
        args.append("--keep-checkpoint")
    return shlex.join(str(a) for a in args)


def openwebtext_problem(config: Mapping, lm_runs: pd.DataFrame) -> str | None:
    """Checked when the workflow starts: a configured local copy of OpenWebText must exist."""
    if not (lm_runs["enabled"] & (lm_runs["text"] == "openwebtext")).any():
        return None
    root = text_root("openwebtext", config)
    if root and not Path(root).exists():
        return (f"openwebtext.root {root} does not exist: point it at nanoGPT's train.bin/val.bin or a folder of "
                ".txt files, set it to null to download OpenWebText, or set openwebtext.enabled: false")
    return None
