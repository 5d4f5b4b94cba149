"""Command lines of the training jobs: a run spec's flags (agd.plan.specs) plus where the run executes, and
every check that can fail before data is loaded. Also the image job's own flags and checks."""

import argparse
import os
from collections.abc import Callable

import torch

from agd.data.catalog import MNIST_LIKE, dataset_info, imagenet_missing
from agd.jobs.distributed import launched_by_torchrun
from agd.jobs.gpu_lease import LEASED
from agd.models.catalog import CONV_ARCHS
from agd.plan.checks import AT_LEAST_ONE, NOT_NEGATIVE, number_problem
from agd.plan.specs import ImageRun, RunSpec


def job_parser(spec: type[RunSpec], description: str) -> tuple[argparse.ArgumentParser, argparse._ArgumentGroup]:
    """A parser with the spec's settings and the execution flags both jobs share; returns the parser and its
    execution group, for the job's own flags."""
    parser = argparse.ArgumentParser(prog=spec.program, description=description)
    spec.add_arguments(parser)
    run = parser.add_argument_group("execution")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    run.add_argument("--data-dir", default="data", help="where datasets and texts are downloaded or prepared")
    run.add_argument("--distribute", action="store_true",
                     help=f"data-parallel over the processes of torchrun (torchrun --nproc-per-node K -m "
                          f"{spec.module} --distribute ...)")
    run.add_argument("--checkpoint-every", type=float, default=60.0,
                     help="seconds between checkpoints (0: every epoch)")
    run.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt after the run ends")
    run.add_argument("--out", required=True, help="run directory for metrics.csv, run.json and checkpoint.pt")
    return parser, run


def parse(parser: argparse.ArgumentParser, spec: type[RunSpec], argv: list[str] | None,
          job_problem: Callable[[argparse.Namespace, RunSpec], str | None]) -> tuple[argparse.Namespace, RunSpec]:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix. Returns the
    namespace with every setting filled in (the run's defaults included) and the run's spec."""
    args = parser.parse_args(argv)
    run = spec.from_args(args)
    problem = run.problem() or execution_problem(args, spec) or job_problem(args, run)
    if problem:
        parser.error(problem)
    run = run.filled()
    for f in spec.fields():
        setattr(args, f.dest, getattr(run, f.name))
    return args, run


def execution_problem(args: argparse.Namespace, spec: type[RunSpec]) -> str | None:
    """What both training jobs check of where they run: threads, checkpoints, torchrun, CUDA."""
    problem = (number_problem("--threads", args.threads, AT_LEAST_ONE)
               or number_problem("--checkpoint-every", args.checkpoint_every, NOT_NEGATIVE))
    if problem:
        return problem
    if args.distribute and not launched_by_torchrun():
        return (f"--distribute runs one process per GPU under torchrun: torchrun --nproc-per-node K -m "
                f"{spec.module} --distribute ...")
    if not args.distribute and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return "started by torchrun with several processes but without --distribute: add --distribute"
    leased = os.environ.get(LEASED)
    if leased and args.device != "cpu" and not torch.cuda.is_available():
        return (f"this job was leased GPU(s) {leased} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}) "
                "but torch sees no CUDA device there: check the ids (nvidia-smi -L) and torch's CUDA build, or "
                "run on the CPU with --device cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda, but torch sees no CUDA device here; use --device cpu (or auto)"
    return None


def resolve_device(args: argparse.Namespace) -> torch.device:
    if args.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


# --- the image job, agd-train ---


def build_parser() -> argparse.ArgumentParser:
    parser, run = job_parser(ImageRun, "Train one network with AGD (no learning rate) or an optimizer from the "
                                       "registry, writing metrics.csv and run.json into --out. Starting again with "
                                       "the same arguments resumes.")
    run.add_argument("--test-bs", type=int, default=1000, help="evaluation batch size (speed only)")
    run.add_argument("--imagenet-root", help="ImageNet folder with train/ and val/ (default: $IMAGENET_PATH)")
    run.add_argument("--num-workers", type=int, default=8, help="ImageNet DataLoader workers")
    run.add_argument("--no-sync-batchnorm", dest="sync_batchnorm", action="store_false",
                     help="with --distribute, normalise each rank's share of the batch by its own statistics instead "
                          "of the global batch's (SyncBatchNorm, the default)")
    run.add_argument("--synthetic-data", action="store_true",
                     help="random data of the dataset's shape, 2 training batches and 1 test batch, nothing downloaded "
                          "(the smoke run: proves the run executes, its numbers mean nothing)")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, ImageRun]:
    args, run = parse(build_parser(), ImageRun, argv, image_problem)
    if args.dataset == "imagenet" and args.imagenet_root is None:
        args.imagenet_root = os.environ.get("IMAGENET_PATH")
    return args, run


def image_problem(args: argparse.Namespace, run: ImageRun) -> str | None:
    problem = (number_problem("--test-bs", args.test_bs, AT_LEAST_ONE)
               or number_problem("--num-workers", args.num_workers, NOT_NEGATIVE))
    if problem:
        return problem
    if run.dataset == "imagenet" and not args.synthetic_data:
        root = args.imagenet_root or os.environ.get("IMAGENET_PATH")
        if not root:
            return ("--dataset imagenet needs the data: pass --imagenet-root DIR or set IMAGENET_PATH "
                    "(DIR/train and DIR/val, one folder per class)")
        missing = imagenet_missing(root)
        if missing:
            return (f"ImageNet root {root} lacks {' and '.join(missing)}/: it needs train/ and val/ with one folder "
                    "per class")
    if args.distribute and run.batch_size < int(os.environ["WORLD_SIZE"]):
        return f"--train-bs {run.batch_size} is smaller than the {os.environ['WORLD_SIZE']} processes it is split over"
    return None


def pad_to(run: ImageRun) -> int | None:
    """Conv nets need 32x32 inputs: MNIST's 28x28 images are zero-padded for them."""
    return 32 if run.arch in CONV_ARCHS and run.dataset in MNIST_LIKE else None


def input_spec(run: ImageRun):
    return dataset_info(run.dataset, pad_to=pad_to(run))

