"""Command line of the language-model job (agd-train-lm), and every check that can fail before data is loaded."""

import argparse
import os

import torch

from agd.arguments import execution_problem
from agd.data.text import TEXTS
from agd.models.gpt import GPTConfig
from agd.optim import TRANSFORMER_OPTIMIZERS

# Batches are drawn from (seed, index); evaluation uses its own stream, the same for every run.
EVAL_SEED = 2**31 - 1
ADAMW_ONLY = ("lr", "min_lr", "warmup_iters", "lr_decay_iters", "beta1", "beta2", "weight_decay", "grad_clip")

# The arguments that decide a run's numbers; the rest (device, paths, speed knobs, max_iters) may
# change between attempts of one run.
IDENTITY = (
    "text", "optimizer", "gain", *ADAMW_ONLY, "n_layer", "n_head", "n_embd", "block_size", "dropout", "bias",
    "batch_size", "grad_accum", "eval_interval", "eval_iters", "seed",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="agd-train-lm",
        description="Train a GPT on a token stream with AGD (no learning rate) or nanoGPT's AdamW, writing "
        "metrics.csv and run.json into --out. Starting again with the same arguments resumes.",
    )
    data = p.add_argument_group("data")
    data.add_argument("--text", choices=TEXTS, default="python_docs_char")
    data.add_argument("--data-dir", default="data", help="where texts are prepared (data-dir/<text>/)")
    data.add_argument("--text-root", help="a local copy of the text (see agd.data.text.prepare_text)")

    model = p.add_argument_group("model (nanoGPT's Shakespeare-char defaults)")
    model.add_argument("--n-layer", type=int, default=6)
    model.add_argument("--n-head", type=int, default=6)
    model.add_argument("--n-embd", type=int, default=384)
    model.add_argument("--block-size", type=int, default=256)
    model.add_argument("--dropout", type=float, default=0.2)
    model.add_argument("--bias", action="store_true", help="biases in the linear layers and LayerNorms")

    opt = p.add_argument_group("optimizer")
    opt.add_argument("--optimizer", choices=TRANSFORMER_OPTIMIZERS, default="agd")
    opt.add_argument("--gain", type=float, default=1.0, help="AGD update multiplier (1 throughout the paper)")
    opt.add_argument("--lr", type=float, help="AdamW peak learning rate (default 1e-3)")
    opt.add_argument("--min-lr", type=float, help="AdamW rate at the end of the cosine (default lr/10)")
    opt.add_argument("--warmup-iters", type=int, help="AdamW linear warmup (default 100)")
    opt.add_argument("--lr-decay-iters", type=int, help="AdamW cosine length (default --max-iters)")
    opt.add_argument("--beta1", type=float, help="AdamW beta1 (default 0.9)")
    opt.add_argument("--beta2", type=float, help="AdamW beta2 (default 0.99)")
    opt.add_argument("--weight-decay", type=float, help="AdamW decoupled weight decay on matrices (default 0.1)")
    opt.add_argument("--grad-clip", type=float, help="AdamW global gradient-norm clip, 0 for none (default 1.0)")

    loop = p.add_argument_group("training")
    loop.add_argument("--batch-size", type=int, default=64, help="sequences per micro-batch")
    loop.add_argument("--grad-accum", type=int, default=1, help="micro-batches per iteration (averaged)")
    loop.add_argument("--max-iters", type=int, default=5000)
    loop.add_argument("--eval-interval", type=int, default=250, help="iterations between metric rows")
    loop.add_argument("--eval-iters", type=int, default=200, help="batches per loss estimate")
    loop.add_argument("--seed", type=int, default=0)

    run = p.add_argument_group("execution")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    run.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                     help="autocast dtype of the forward pass (auto: bfloat16 on a CUDA GPU that has it)")
    run.add_argument("--compile", choices=("auto", "yes", "no"), default="auto",
                     help="torch.compile the model (auto: on CUDA)")
    run.add_argument("--distribute", action="store_true",
                     help="data-parallel over torchrun's processes: the micro-batches are split between them")
    run.add_argument("--checkpoint-every", type=float, default=60.0, help="seconds between checkpoints")
    run.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt after the run ends")
    run.add_argument("--out", required=True, help="run directory for metrics.csv, run.json and checkpoint.pt")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and validate; a bad argument exits with code 2 and a message naming it and the fix."""
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = find_problem(args)
    if problem:
        parser.error(problem)
    fill_defaults(args)
    problem = schedule_problem(args)
    if problem:
        parser.error(problem)
    return args


def find_problem(args: argparse.Namespace) -> str | None:
    if args.optimizer == "agd":
        given = [name for name in ADAMW_ONLY if getattr(args, name) is not None]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            return f"{flags}: AdamW settings; AGD sets its own learning rate, drop them"
    elif args.gain != 1.0:
        return "--gain is AGD's update multiplier; AdamW has --lr instead, drop --gain"
    try:
        GPTConfig(vocab_size=1, block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head,
                  n_embd=args.n_embd, dropout=args.dropout, bias=args.bias)
    except ValueError as e:
        return f"model: {e}"
    positive = ("batch_size", "grad_accum", "eval_interval", "eval_iters", "gain", "lr", "beta1", "beta2")
    for name in positive:
        value = getattr(args, name)
        if value is not None and value <= 0:
            return f"--{name.replace('_', '-')} {value} must be positive"
    for name in ("max_iters", "warmup_iters", "lr_decay_iters", "min_lr", "weight_decay", "grad_clip"):
        value = getattr(args, name)
        if value is not None and value < 0:
            return f"--{name.replace('_', '-')} {value} must not be negative"
    for name in ("beta1", "beta2"):
        value = getattr(args, name)
        if value is not None and value >= 1:
            return f"--{name} {value} must be below 1"
    if not 0 <= args.seed < EVAL_SEED:
        return f"--seed {args.seed}: use 0 <= seed < {EVAL_SEED}"
    if args.text == "python_docs_char" and args.text_root:
        return "--text-root: python_docs_char is read from Python's own installation; drop --text-root"
    problem = execution_problem(args, "agd.train_lm")
    if problem:
        return problem
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.distribute and args.grad_accum % world:
        return f"--grad-accum {args.grad_accum} does not split over {world} processes: use a multiple of {world}"
    if args.precision == "bfloat16" and args.device == "cpu":
        return "--precision bfloat16 is for CUDA here; on the CPU use --precision float32 (or auto)"
    return None


def schedule_problem(args: argparse.Namespace) -> str | None:
    """AdamW's schedule, checked once its defaults are filled in."""
    if args.optimizer != "adamw":
        return None
    if args.min_lr > args.lr:
        return f"--min-lr {args.min_lr} is above --lr {args.lr}: the cosine decays from lr down to min-lr"
    if args.warmup_iters > args.lr_decay_iters:
        return (f"--warmup-iters {args.warmup_iters} is longer than --lr-decay-iters {args.lr_decay_iters} "
                "(default --max-iters): the cosine would have no length; shorten the warmup")
    return None


def fill_defaults(args: argparse.Namespace) -> None:
    """nanoGPT's Shakespeare-char AdamW settings where not given; AdamW-only settings stay None for AGD."""
    if args.optimizer != "adamw":
        return
    defaults = dict(lr=1e-3, warmup_iters=100, lr_decay_iters=args.max_iters, beta1=0.9, beta2=0.99,
                    weight_decay=0.1, grad_clip=1.0)
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.min_lr is None:
        args.min_lr = args.lr / 10


def identity(args: argparse.Namespace) -> dict:
    return {key: getattr(args, key) for key in IDENTITY}


def autocast_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast on a GPU that supports it (no loss scaling: nothing inflates AGD's G); else none."""
    if args.precision == "float32" or device.type != "cuda":
        return None
    if args.precision == "bfloat16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def use_compile(args: argparse.Namespace, device: torch.device) -> bool:
    return args.compile == "yes" or (args.compile == "auto" and device.type == "cuda")
