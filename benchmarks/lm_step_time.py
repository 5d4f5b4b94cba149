"""Tokens per second of a GPT training iteration with TransformerAGD against AdamW, measured in one process.

Each optimizer trains a fresh copy of the same GPT on the same batches; the first --warmup iterations
are not timed. The ratio AGD / AdamW is the price of AGD's per-tensor norms and its single G (on CUDA,
also the host never waits for G: eta stays a tensor). Defaults: the quick preset's GPT.

    python benchmarks/lm_step_time.py --threads 1
    python benchmarks/lm_step_time.py --device cuda --n-layer 6 --n-head 6 --n-embd 384 --block-size 256 --batch-size 64
"""

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

from agd.data.text import load_text
from agd.models.gpt import GPT, GPTConfig
from agd.optim import registry
from agd.plan.specs import LMRun


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_iterations(name: str, args, data, device: torch.device) -> list[float]:
    torch.manual_seed(0)
    entry = registry.get(name)
    config = GPTConfig(vocab_size=data.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, parametrization=entry.parametrization)
    model = GPT(config).to(device)
    opt = entry.build(registry.LM, model, LMRun(optimizer=name, n_layer=args.n_layer).filled())
    net = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    seconds = []
    for i in range(args.warmup + args.iters):
        x, y = data.batch("train", args.batch_size, args.block_size, seed=0, index=i)
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            _, loss = net(x, y)
        loss.backward()
        if name == "adamw":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        synchronize(device)
        if i >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--text", default="python_docs_char")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--n-layer", type=int, default=2)
    parser.add_argument("--n-head", type=int, default=2)
    parser.add_argument("--n-embd", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--iters", type=int, default=100, help="timed iterations per optimizer")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_text(args.text, args.data_dir, device=device)

    tokens = args.batch_size * args.block_size
    rates = {}
    for name in ("adamw", "agd"):
        median = statistics.median(timed_iterations(name, args, data, device))
        rates[name] = tokens / median
        print(f"{name:>5}: {1e3 * median:7.2f} ms/iteration (median of {args.iters}), {rates[name]:,.0f} tokens/s")
    print(f"AGD / AdamW throughput: {rates['agd'] / rates['adamw']:.3f} on {device} "
          f"({torch.get_num_threads()} threads)" if device.type == "cpu" else
          f"AGD / AdamW throughput: {rates['agd'] / rates['adamw']:.3f} on {torch.cuda.get_device_name(device)}")


if __name__ == "__main__":
    main()
