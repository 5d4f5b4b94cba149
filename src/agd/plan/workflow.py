"""What the workflow asks of each run: its training command, its data, the code its rules depend on, and the
checks made before any job."""

import ast
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from agd.data import catalog
from agd.data.catalog import DOWNLOADABLE, imagenet_missing
from agd.plan import bundles, lm_grid
from agd.plan.specs import LMRun

RUNS_DIR = "results/runs"
BUNDLES_DIR = "results/bundles"


def data_marker(dataset: str, data_dir: str, smoke: bool = False) -> list[str]:
    """The file download_data leaves once `dataset` is on disk; nothing for bundled or local sets, or for the
    smoke run's made-up data."""
    return [f"{data_dir}/.{dataset}.ready"] if dataset in DOWNLOADABLE and not smoke else []


def imagenet_root(config: Mapping) -> str | None:
    return catalog.imagenet_root(config.get("imagenet", {}).get("root"))


def execution_args(preset: Mapping, config: Mapping) -> list:
    """What every training job is told of where it runs: device, threads, data directory, checkpoints."""
    args = ["--device", preset["device"], "--threads", preset.get("threads", 1),
            "--data-dir", config.get("data_dir", "data")]
    if config.get("keep_checkpoints", True):
        args.append("--keep-checkpoint")
    return args


def image_args(config: Mapping, datasets) -> list:
    """What an image job is told besides: the ImageNet root, or in the smoke run to make its data up."""
    if config.get("smoke"):
        return ["--synthetic-data"]
    return ["--imagenet-root", imagenet_root(config)] if "imagenet" in set(datasets) else []


def bundle_command(runs: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str = RUNS_DIR) -> str:
    """agd.jobs.bundle's command line for a bundle's runs (without --manifest), with the preset's device and threads."""
    extra = image_args(config, runs["dataset"])
    return shlex.join(str(a) for a in [*execution_args(preset, config), *extra,
                                       *bundles.member_args(runs, runs_dir)])


def python(conda: bool, src: Path) -> str:
    """How a rule's shell command starts Python with agd importable: this interpreter, which has the project
    installed; or, where Snakemake deploys the rule's conda environment, that environment's python with the
    workflow's own src/ on its path (conda copies the environment file, so it cannot install the checkout)."""
    if conda:
        return f"PYTHONPATH={shlex.quote(str(src))}${{PYTHONPATH:+:$PYTHONPATH}} python"
    return shlex.quote(sys.executable)


def runs_dir(metrics: list[str], runs, default: str) -> str:
    """The folder that holds `runs`, read from a rule's inputs that are their metrics.csv files
    (<folder>/<run>/metrics.csv), `default` when the rule has none: the rule finds its runs where its inputs are,
    which a storage provider may have moved, rather than writing the folder again."""
    for path in metrics:
        for run in runs:
            if path.endswith(f"/{run}/metrics.csv"):
                return path[:-len(f"/{run}/metrics.csv")]
    return default


def imagenet_problem(config: Mapping, runs: pd.DataFrame) -> str | None:
    """Checked when the workflow starts: planned ImageNet runs need the data on disk."""
    if not (runs["enabled"] & (runs["dataset"] == "imagenet")).any():
        return None
    root = imagenet_root(config)
    if not root:
        return ("imagenet.enabled is true but imagenet.root is not set: set imagenet.root in config.yaml "
                "(or $IMAGENET_PATH) to a folder with train/ and val/, or set imagenet.enabled: false")
    missing = imagenet_missing(root)
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


def figure_notes(config: Mapping, preset: Mapping, figure: str) -> list[str]:
    """What config.yaml notes about a figure's panels (or, for the peers' figures, about the peers block)."""
    if figure in preset["figures"]:
        panels = preset["figures"][figure]["panels"]
    elif figure == lm_grid.FIGURE:
        panels = lm_grid.transformer_panels(config)
    else:
        note = preset.get("peers", {}).get("note")
        return [note] if note else []
    return [f"{name}: {panel['note']}" for name, panel in panels.items() if "note" in panel]


# --- transformer runs ---

LM_RUNS_DIR = "results/lm_runs"


def text_root(text: str, config: Mapping) -> str | None:
    return config.get(text, {}).get("root")


def text_root_flag(text: str, config: Mapping) -> str:
    root = text_root(text, config)
    return shlex.join(["--root", root]) if root else ""


def text_marker(text: str, data_dir: str) -> str:
    """The file prepare_text leaves once a text's token files are complete."""
    return f"{data_dir}/{text}/meta.json"


def lm_bundle_command(runs: pd.DataFrame, preset: Mapping, config: Mapping, runs_dir: str = LM_RUNS_DIR) -> str:
    """agd.jobs.lm_bundle's command line for a bundle's GPT runs (one text; without --manifest)."""
    root = text_root(runs["text"].iloc[0], config)
    return shlex.join(str(a) for a in [*execution_args(preset, config), *(["--text-root", root] if root else []),
                                       *bundles.member_args(runs, runs_dir, LMRun)])


def openwebtext_problem(config: Mapping, lm_runs: pd.DataFrame) -> str | None:
    """Checked when the workflow starts: a configured local copy of OpenWebText must exist."""
    if not (lm_runs["enabled"] & (lm_runs["text"] == "openwebtext")).any():
        return None
    root = text_root("openwebtext", config)
    if root and not Path(root).exists():
        return (f"openwebtext.root {root} does not exist: point it at nanoGPT's train.bin/val.bin or a folder of "
                ".txt files, set it to null to download OpenWebText, or set openwebtext.enabled: false")
    return None


# --- the code a rule depends on ---

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # src/agd


def source_file(module: str) -> Path | None:
    """The file of an agd module, found on disk without importing anything."""
    head, *parts = module.split(".")
    if head != PACKAGE_ROOT.name:
        return None
    base = PACKAGE_ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_sources(module: str) -> list[str]:
    """The files of an agd `module` and of every agd module it imports, directly or not, read from the source:
    a rule that runs the module lists them as inputs, so that editing any of them reruns it."""
    seen: dict[str, Path] = {}
    pending = [module]
    while pending:
        name = pending.pop()
        path = source_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                pending.append(node.module)
                pending += [f"{node.module}.{alias.name}" for alias in node.names]  # submodules by name
        if "." in name:
            pending.append(name.rpartition(".")[0])  # a package's __init__ runs before its modules
    return sorted(str(path) for path in set(seen.values()))
