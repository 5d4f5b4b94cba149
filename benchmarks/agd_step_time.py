"""AGD's optimizer step against torch.optim.Adam(foreach=True) on one model, measured in one run.

The gradients are fixed (one backward pass), so only the optimizer's step is timed: the two optimizers' steps
alternate and the medians over --steps steps after --warmup are compared. A deep, wide FCN stands for the case
where the step matters: depth 8, width 1024 on MNIST-shaped inputs (7.1M weights).

    python benchmarks/agd_step_time.py [--depth 8] [--width 1024] [--threads 2] [--device cpu]
"""

import argparse
import statistics
import time

import torch

from agd.models.build import build_model
from agd.optim import AGD


def seconds(opt: torch.optim.Optimizer, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    began = time.perf_counter()
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 28, 28), num_classes=10, depth=args.depth, width=args.width).to(device)
    x, y = torch.randn(128, 1, 28, 28, device=device), torch.randint(0, 10, (128,), device=device)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    params = sum(p.numel() for p in model.parameters())

    agd = AGD(model.parameters())
    adam = torch.optim.Adam(model.parameters(), lr=1e-12, foreach=True)  # a tiny rate: the weights barely move
    times = {agd: [], adam: []}
    for index in range(args.warmup + args.steps):
        for opt, measured in times.items():
            elapsed = seconds(opt, device)
            if index >= args.warmup:
                measured.append(elapsed)
    agd_time, adam_time = statistics.median(times[agd]), statistics.median(times[adam])
    print(f"FCN depth {args.depth} width {args.width} ({params / 1e6:.1f}M weights), {args.device}, "
          f"{args.threads} thread(s): AGD step {1e3 * agd_time:.2f} ms, Adam(foreach) step {1e3 * adam_time:.2f} ms, "
          f"ratio {agd_time / adam_time:.3f}")


if __name__ == "__main__":
    main()
