"""What a run.json records about the software and machine that produced a run."""

import platform
import subprocess
from pathlib import Path

import torch

import agd


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, with '+dirty' if it has local changes."""
    source = Path(agd.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True,
            text=True, timeout=5, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment(device: torch.device) -> dict:
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "agd": agd.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "hostname": platform.node(),
    }
