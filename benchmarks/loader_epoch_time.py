"""Epoch time of the depth-8 FCN on mnist5k: on-device train_batches against a plain DataLoader on the same tensors."""

import argparse
import math
import statistics
import time
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from agd.data import load_dataset
from agd.models import build_model

DEPTH, WIDTH, NUM_CLASSES = 8, 256, 10


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches: Iterable, device: torch.device) -> float:
    """Seconds for one pass over `batches` (including fetching them), one SGD step per batch."""
    synchronize(device)
    start = time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        target = nn.functional.one_hot(y, NUM_CLASSES).float() * math.sqrt(NUM_CLASSES)
        loss = nn.functional.mse_loss(model(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per loader (after one warm-up each)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    device = torch.device(args.device)

    data = load_dataset("mnist5k", device=device)
    plain = DataLoader(TensorDataset(data.train_x, data.train_y), batch_size=args.batch_size, shuffle=True)
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=data.info.input_shape, num_classes=NUM_CLASSES, depth=DEPTH, width=WIDTH)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    loaders: dict[str, Callable[[int], Iterable]] = {
        "on-device train_batches": lambda epoch: data.train_batches(args.batch_size, seed=0, epoch=epoch),
        "DataLoader(TensorDataset)": lambda epoch: plain,
    }
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up both and is not counted
        for name, batches in loaders.items():
            seconds = train_epoch(model, opt, batches(epoch), device)
            if epoch > 0:
                times[name].append(seconds)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"mnist5k, FCN depth {DEPTH} width {WIDTH}, batch {args.batch_size}, {data.steps_per_epoch(args.batch_size)} "
          f"steps/epoch, device {device}, median of {args.epochs} epochs:")
    for name, median in medians.items():
        print(f"  {name:28s} {median * 1000:8.1f} ms/epoch")
    ratio = medians["DataLoader(TensorDataset)"] / medians["on-device train_batches"]
    print(f"  DataLoader / ours: {ratio:.2f}x")


if __name__ == "__main__":
    main()
