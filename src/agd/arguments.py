"""Command line of the training job, and every check that can fail before data is loaded."""

import argparse
import os
from pathlib import Path

import torch

from agd.data import DATASETS, dataset_info
from agd.distributed import launched_by_torchrun
from agd.models import ARCHS, default_width
from agd.optim import DEFAULT_LR, OPTIMIZERS

AGD_OPTIMIZERS = ("agd", "agd-bias")
CONV_ARCHS = ("vgg16", "resnet18", "resnet50")
MNIST_LIKE = ("mnist", "mnist5k")
DEFAULT_FCN_DEPTH = 10

# The arguments that decide a run's numbers. A checkpoint or finished run in --out is reused only when
# these match; the rest (device, paths, speed knobs, epochs) may change between attempts.
IDENTITY = (
    "arch", "dataset", "optimizer", "lr", "loss", "beta", "gain", "train_bs", "depth", "width", "seed",
    "log_steps", "bias",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agd-train",
        description="Train one network with AGD (no learning rate) or a fixed-rate Adam/SGD baseline, "
        "writing metrics.csv and run.json into --out. Starting again with the same arguments resumes.",
    )
    p.add_argument("--arch", choices=ARCHS, default="fcn")
    p.add_argument("--dataset", choices=DATASETS, default="cifar10")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="agd")
    p.add_argument("--lr", type=float, help="learning rate of a baseline (default: adam 1e-3, sgd 0.1)")
    p.add_argument("--loss", choices=("mse", "xent"), default="mse")
    p.add_argument("--beta", type=float, default=1.0, help="xent inverse temperature: logits are multiplied by it")
    p.add_argument("--gain", type=float, default=1.0, help="AGD update multiplier (the paper used 1)")
    p.add_argument("--train-bs", type=int, default=128)
    p.add_argument("--test-bs", type=int, default=1000, help="evaluation batch size (speed only)")
    p.add_argument("--epochs", type=int, default=200, help="training epochs after the epoch-0 pass at init")
    p.add_argument("--depth", type=int, help=f"FCN depth: number of linear layers (default {DEFAULT_FCN_DEPTH})")
    p.add_argument("--width", type=int, help="FCN width, or the base width of a conv net (default 256 / 64)")
    p.add_argument("--bias", action="store_true", help="enable biases and BN affine parameters (needs agd-bias for AGD)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--data-dir", default="data", help="where torchvision datasets are downloaded")
    p.add_argument("--imagenet-root", help="ImageNet folder with train/ and val/ (default: $IMAGENET_PATH)")
    p.add_argument("--num-workers", type=int, default=8, help="ImageNet DataLoader workers")
    p.add_argument("--distribute", action="store_true",
                   help="data-parallel over the processes of torchrun (torchrun --nproc-per-node K -m agd.train ...)")
    p.add_argument("--log-steps", type=int, default=0, help="also log a row after each of the first N iterations")
    p.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds between checkpoints (0: every epoch)")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt after the run ends")
    p.add_argument("--out", required=True, help="run directory for metrics.csv, run.json and checkpoint.pt")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = find_problem(args)
    if problem:
        parser.error(problem)
    fill_defaults(args)
    return args


def find_problem(args: argparse.Namespace) -> str | None:
    is_agd = args.optimizer in AGD_OPTIMIZERS
    if args.arch == "fcn":
        if args.depth is not None and args.depth < 2:
            return f"--depth {args.depth}: an FCN needs at least 2 layers (input and output); use --depth 2 or more"
    elif args.depth is not None:
        return f"--depth applies to --arch fcn only; {args.arch} has a fixed depth, drop --depth"
    if args.width is not None and args.width < 1:
        return f"--width {args.width}: the width must be a positive integer"
    if is_agd and args.lr is not None:
        return f"--lr is for the baselines (adam, sgd); {args.optimizer} sets its own learning rate, drop --lr"
    if args.lr is not None and args.lr <= 0:
        return f"--lr {args.lr}: a learning rate must be positive"
    if not is_agd and args.gain != 1.0:
        return f"--gain is AGD's update multiplier; {args.optimizer} has --lr instead, drop --gain"
    if args.gain <= 0:
        return f"--gain {args.gain}: the gain must be positive"
    if args.optimizer == "agd" and args.bias:
        return "--bias with --optimizer agd: Algorithm 1 has no rule for biases; use --optimizer agd-bias"
    if args.loss == "mse" and args.beta != 1.0:
        return "--beta scales the logits of --loss xent; it has no meaning for --loss mse, drop it"
    if args.beta <= 0:
        return f"--beta {args.beta}: the inverse temperature must be positive"
    for name in ("train_bs", "test_bs"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1"
    if args.epochs < 0:
        return f"--epochs {args.epochs}: use 0 (the init pass only) or more"
    if args.log_steps < 0:
        return f"--log-steps {args.log_steps}: use 0 (off) or a positive number of iterations"
    if args.checkpoint_every < 0:
        return f"--checkpoint-every {args.checkpoint_every}: use 0 (every epoch) or a number of seconds"
    if args.arch in ("vgg16", "resnet18") and args.dataset == "imagenet":
        return f"--arch {args.arch} is the CIFAR variant (32x32 inputs); on imagenet use --arch resnet50 or fcn"
    if args.dataset == "imagenet":
        root = args.imagenet_root or os.environ.get("IMAGENET_PATH")
        if not root:
            return "--dataset imagenet needs the data: pass --imagenet-root DIR or set IMAGENET_PATH (DIR/train and DIR/val, one folder per class)"
        missing = [d for d in ("train", "val") if not (Path(root) / d).is_dir()]
        if missing:
            return f"ImageNet root {root} lacks {' and '.join(missing)}/: it needs train/ and val/ with one folder per class"
    problem = execution_problem(args, "agd.train")
    if problem:
        return problem
    if args.distribute and args.train_bs < int(os.environ["WORLD_SIZE"]):
        return f"--train-bs {args.train_bs} is smaller than the {os.environ['WORLD_SIZE']} processes it is split over"
    return None


def execution_problem(args: argparse.Namespace, module: str) -> str | None:
    """What both training jobs (`module`) check of where they run: threads, torchrun, CUDA."""
    if args.threads is not None and args.threads < 1:
        return f"--threads {args.threads}: use 1 or more"
    if args.distribute and not launched_by_torchrun():
        return f"--distribute runs one process per GPU under torchrun: torchrun --nproc-per-node K -m {module} --distribute ..."
    if not args.distribute and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return "started by torchrun with several processes but without --distribute: add --distribute"
    if args.device == "cuda" and not torch.cuda.is_available():
        return "--device cuda, but torch sees no CUDA device here; use --device cpu (or auto)"
    return None


def fill_defaults(args: argparse.Namespace) -> None:
    if args.arch == "fcn" and args.depth is None:
        args.depth = DEFAULT_FCN_DEPTH
    if args.width is None:
        args.width = default_width(args.arch)
    if args.optimizer not in AGD_OPTIMIZERS and args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.dataset == "imagenet" and args.imagenet_root is None:
        args.imagenet_root = os.environ.get("IMAGENET_PATH")


def pad_to(args: argparse.Namespace) -> int | None:
    """Conv nets need 32x32 inputs: MNIST's 28x28 images are zero-padded for them."""
    return 32 if args.arch in CONV_ARCHS and args.dataset in MNIST_LIKE else None


def resolve_device(args: argparse.Namespace) -> torch.device:
    if args.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(args.device)


def identity(args: argparse.Namespace) -> dict:
    return {key: getattr(args, key) for key in IDENTITY}


def input_spec(args: argparse.Namespace):
    return dataset_info(args.dataset, pad_to=pad_to(args))
