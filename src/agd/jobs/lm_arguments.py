"""Command line of the language-model job (agd-train-lm): an LMRun's flags, where it runs, and its own checks."""

import argparse
import os
from dataclasses import dataclass

import torch

from agd.jobs.arguments import Execution, job_parser, option, parse
from agd.plan.specs import LMRun


@dataclass(frozen=True)
class LMExecution(Execution):
    text_root: str | None = option(help="a local copy of the text (see agd.data.text.prepare_text)")
    precision: str = option("auto", choices=("auto", "float32", "bfloat16"),
                            help="autocast dtype of the forward pass (auto: bfloat16 on a CUDA GPU that has it)")
    compile: str = option("auto", choices=("auto", "yes", "no"), help="torch.compile the model (auto: on CUDA, where a tiny compiled function runs; else eager)")


def build_parser() -> argparse.ArgumentParser:
    return job_parser(LMRun, LMExecution, "Train a GPT on a token stream with AGD (no learning rate), nanoGPT's "
                                          "AdamW or a peer (agd.optim.registry), writing metrics.csv and run.json "
                                          "into --out. Starting again with the same arguments resumes.")


def parse_args(argv: list[str] | None = None) -> tuple[LMRun, LMExecution]:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix."""
    return parse(build_parser(), LMRun, LMExecution, argv, lm_problem)


def lm_problem(execution: LMExecution, run: LMRun) -> str | None:
    if run.text == "python_docs_char" and execution.text_root:
        return "--text-root: python_docs_char is read from Python's own installation; drop --text-root"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if execution.distribute and run.grad_accum % world:
        return f"--grad-accum {run.grad_accum} does not split over {world} processes: use a multiple of {world}"
    if execution.precision == "bfloat16" and execution.device == "cpu":
        return "--precision bfloat16 is for CUDA here; on the CPU use --precision float32 (or auto)"
    return None


def autocast_dtype(execution: LMExecution, device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast on a GPU that supports it (no loss scaling: nothing inflates AGD's G); else none."""
    if execution.precision == "float32" or device.type != "cuda":
        return None
    if execution.precision == "bfloat16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None

