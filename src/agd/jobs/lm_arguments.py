"""Command line of the language-model job (agd-train-lm): an LMRun's flags, where it runs, and its own checks."""

import argparse
import os

import torch

from agd.jobs.arguments import job_parser, parse
from agd.plan.specs import LMRun


def build_parser() -> argparse.ArgumentParser:
    parser, run = job_parser(LMRun, "Train a GPT on a token stream with AGD (no learning rate) or nanoGPT's AdamW, "
                                    "writing metrics.csv and run.json into --out. Starting again with the same "
                                    "arguments resumes.")
    run.add_argument("--text-root", help="a local copy of the text (see agd.data.text.prepare_text)")
    run.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                     help="autocast dtype of the forward pass (auto: bfloat16 on a CUDA GPU that has it)")
    run.add_argument("--compile", choices=("auto", "yes", "no"), default="auto",
                     help="torch.compile the model (auto: on CUDA, where a tiny compiled function runs; else eager)")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, LMRun]:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix."""
    return parse(build_parser(), LMRun, argv, lm_problem)


def lm_problem(args: argparse.Namespace, run: LMRun) -> str | None:
    if run.text == "python_docs_char" and args.text_root:
        return "--text-root: python_docs_char is read from Python's own installation; drop --text-root"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.distribute and run.grad_accum % world:
        return f"--grad-accum {run.grad_accum} does not split over {world} processes: use a multiple of {world}"
    if args.precision == "bfloat16" and args.device == "cpu":
        return "--precision bfloat16 is for CUDA here; on the CPU use --precision float32 (or auto)"
    return None


def autocast_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast on a GPU that supports it (no loss scaling: nothing inflates AGD's G); else none."""
    if args.precision == "float32" or device.type != "cuda":
        return None
    if args.precision == "bfloat16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None

