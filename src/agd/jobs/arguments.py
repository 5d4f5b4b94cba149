"""Command lines of the training jobs, parsed once into the run's spec (agd.plan.specs: what the run is) and
an Execution (where and how it runs: nothing in it changes the run's numbers), with every check that can fail
before data is loaded. Also the image job's own execution flags and checks."""

import argparse
import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch

from agd.data.catalog import IMAGENET_ENV, MNIST_LIKE, dataset_info, imagenet_missing, imagenet_root
from agd.paths import directory_problem
from agd.jobs.distributed import launched_by_torchrun
from agd.jobs.gpu_lease import LEASED
from agd.models.catalog import CONV_ARCHS
from agd.plan.checks import AT_LEAST_ONE, NOT_NEGATIVE, number_problem
from agd.plan.specs import ImageRun, RunSpec, add_flag, value_type


def option(default=None, *, help: str | None = None, choices: tuple | None = None, required: bool = False):
    """An execution flag: its default and how the command line shows it ({module} in `help` is the job's)."""
    return dataclasses.field(default=default, metadata=dict(help=help, choices=choices, required=required))


@dataclass(frozen=True)
class Execution:
    """The execution flags both jobs share."""

    device: str = option("auto", choices=("auto", "cpu", "cuda"))
    threads: int | None = option(help="CPU threads for torch (default: torch's choice)")
    data_dir: str = option("data", help="where datasets and texts are downloaded or prepared")
    distribute: bool = option(False, help="data-parallel over the processes of torchrun (torchrun --nproc-per-node K "
                                          "-m {module} --distribute ...)")
    checkpoint_every: float = option(60.0, help="seconds between checkpoints (0: every epoch)")
    keep_checkpoint: bool = option(False, help="keep checkpoint.pt after the run ends")
    out: str = option(required=True, help="run directory for metrics.csv, run.json and checkpoint.pt")

    @classmethod
    def add_arguments(cls, group, spec: type[RunSpec]) -> None:
        for f in dataclasses.fields(cls):
            help = f.metadata["help"] and f.metadata["help"].format(module=spec.module)
            add_flag(group, "--" + f.name.replace("_", "-"), value_type(f.type), f.default, f.metadata["choices"],
                     help, f.metadata["required"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Execution":
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})

    def problem(self, spec: type[RunSpec]) -> str | None:
        """What both training jobs check of where they run: threads, checkpoints, torchrun, CUDA."""
        problem = (number_problem("--threads", self.threads, AT_LEAST_ONE)
                   or number_problem("--checkpoint-every", self.checkpoint_every, NOT_NEGATIVE)
                   or directory_problem("--data-dir", self.data_dir, writable=False))
        if problem:
            return problem
        if self.distribute and not launched_by_torchrun():
            return (f"--distribute runs one process per GPU under torchrun: torchrun --nproc-per-node K -m "
                    f"{spec.module} --distribute ...")
        if not self.distribute and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            return "started by torchrun with several processes but without --distribute: add --distribute"
        leased = os.environ.get(LEASED)
        if leased and self.device != "cpu" and not torch.cuda.is_available():
            return (f"this job was leased GPU(s) {leased} (CUDA_VISIBLE_DEVICES="
                    f"{os.environ.get('CUDA_VISIBLE_DEVICES')}) but torch sees no CUDA device there: check the ids "
                    "(nvidia-smi -L) and torch's CUDA build, or run on the CPU with --device cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            return "--device cuda, but torch sees no CUDA device here; use --device cpu (or auto)"
        return None


def resolve_device(execution: Execution) -> torch.device:
    if execution.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(execution.device)


def job_parser(spec: type[RunSpec], execution: type[Execution], description: str) -> argparse.ArgumentParser:
    """A parser with the spec's settings and the job's execution flags."""
    parser = argparse.ArgumentParser(prog=spec.program, description=description)
    spec.add_arguments(parser)
    execution.add_arguments(parser.add_argument_group("execution"), spec)
    return parser


def parse(parser: argparse.ArgumentParser, spec: type[RunSpec], execution: type[Execution], argv: list[str] | None,
          job_problem: Callable[[Execution, RunSpec], str | None]) -> tuple[RunSpec, Execution]:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix. Returns the
    run's spec with every setting filled in (the run's defaults included) and how it executes."""
    args = parser.parse_args(argv)
    run, how = spec.from_args(args), execution.from_args(args)
    problem = run.problem() or how.problem(spec) or job_problem(how, run)
    if problem:
        parser.error(problem)
    return run.filled(), how


# --- the image job, agd-train ---


@dataclass(frozen=True)
class ImageExecution(Execution):
    test_bs: int = option(1000, help="evaluation batch size (speed only)")
    imagenet_root: str | None = option(help=f"ImageNet folder with train/ and val/ (default: ${IMAGENET_ENV})")
    num_workers: int = option(8, help="ImageNet DataLoader workers")
    sync_batchnorm: bool = option(True, help="with --distribute, normalise each rank's share of the batch by its own "
                                             "statistics instead of the global batch's (SyncBatchNorm, the default)")
    synthetic_data: bool = option(False, help="random data of the dataset's shape, 2 training batches and 1 test "
                                              "batch, nothing downloaded (the smoke run: proves the run executes, "
                                              "its numbers mean nothing)")


def build_parser() -> argparse.ArgumentParser:
    return job_parser(ImageRun, ImageExecution, "Train one network with AGD (no learning rate) or an optimizer from "
                                                "the registry, writing metrics.csv and run.json into --out. Starting "
                                                "again with the same arguments resumes.")


def parse_args(argv: list[str] | None = None) -> tuple[ImageRun, ImageExecution]:
    run, execution = parse(build_parser(), ImageRun, ImageExecution, argv, image_problem)
    if run.dataset == "imagenet":
        execution = dataclasses.replace(execution, imagenet_root=imagenet_root(execution.imagenet_root))
    return run, execution


def image_problem(execution: ImageExecution, run: ImageRun) -> str | None:
    problem = (number_problem("--test-bs", execution.test_bs, AT_LEAST_ONE)
               or number_problem("--num-workers", execution.num_workers, NOT_NEGATIVE))
    if problem:
        return problem
    if run.dataset == "imagenet" and not execution.synthetic_data:
        root = imagenet_root(execution.imagenet_root)
        if not root:
            return (f"--dataset imagenet needs the data: pass --imagenet-root DIR or set {IMAGENET_ENV} "
                    "(DIR/train and DIR/val, one folder per class)")
        missing = imagenet_missing(root)
        if missing:
            return (f"ImageNet root {root} lacks {' and '.join(missing)}/: it needs train/ and val/ with one folder "
                    "per class")
    if execution.distribute and run.batch_size < int(os.environ["WORLD_SIZE"]):
        return f"--train-bs {run.batch_size} is smaller than the {os.environ['WORLD_SIZE']} processes it is split over"
    return None


def pad_to(run: ImageRun) -> int | None:
    """Conv nets need 32x32 inputs: MNIST's 28x28 images are zero-padded for them."""
    return 32 if run.arch in CONV_ARCHS and run.dataset in MNIST_LIKE else None


def input_spec(run: ImageRun):
    return dataset_info(run.dataset, pad_to=pad_to(run))
