"""What the checkpoint's digest costs: writing and reading a checkpoint through agd.jobs.checkpoint (sha256
computed while writing, verified before reading) against plain torch.save and torch.load of the same state, both
atomic, measured in one run of this script. The state is a run's: a network's weights and Adam's two moments.

    python benchmarks/checkpoint_digest.py [--arch resnet18] [--width 64] [--repeats 5]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from agd.io import atomic_write
from agd.jobs import checkpoint
from agd.models.build import build_model


def state_of(arch: str, width: int) -> dict:
    torch.manual_seed(0)
    model = build_model(arch, input_shape=(3, 32, 32), num_classes=10, width=width)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}


def median_seconds(work, repeats: int) -> float:
    times = []
    for attempt in range(repeats + 1):  # the first one warms the page cache
        began = time.perf_counter()
        work()
        if attempt:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    state = state_of(args.arch, args.width)
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory(prefix="checkpoint-digest-") as scratch:
        plain, digested = Path(scratch) / "plain", Path(scratch) / "digested"
        plain.mkdir()

        def plain_round() -> None:
            atomic_write(plain / checkpoint.CHECKPOINT, lambda f: torch.save({"format": 1, **state}, f))
            torch.load(plain / checkpoint.CHECKPOINT, map_location=cpu, weights_only=False)

        def digested_round() -> None:
            checkpoint.save(digested, state)
            checkpoint.load(digested, cpu)

        digested.mkdir()
        seconds = {"torch.save + torch.load": median_seconds(plain_round, args.repeats),
                   "checkpoint.save + checkpoint.load": median_seconds(digested_round, args.repeats)}
        size = (digested / checkpoint.CHECKPOINT).stat().st_size
    print(f"{args.arch} width {args.width}: checkpoint of {size / 2**20:.1f} MiB, median of {args.repeats}")
    for name, value in seconds.items():
        print(f"  {name:36s} {value * 1000:8.1f} ms")
    ratio = seconds["checkpoint.save + checkpoint.load"] / seconds["torch.save + torch.load"]
    print(f"  with the digest / without: {ratio:.3f}")


if __name__ == "__main__":
    main()
