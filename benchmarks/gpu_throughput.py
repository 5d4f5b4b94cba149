"""GPU throughput of the paper's networks, and the paper grid's GPU-hours recomputed from it (under 5 minutes).

On CIFAR-shaped data made on the device (no download): an FCN of depth 8 and width 256 trained alone and as a
stacked bundle of 8 runs (agd.jobs.batched, as agd.jobs.bundle steps them on CUDA), a ResNet-18 and a VGG-16,
each for a few hundred AGD steps at batch 128. It prints steps per second, peak GPU memory, the bundle's
speedup in runs trained per second, and the paper grid's GPU-hours (ImageNet aside) from these measurements
beside agd.plan.cluster's model.

    python benchmarks/gpu_throughput.py [--steps 300] [--device cuda]
"""

import argparse
import time
from pathlib import Path

import torch
import yaml

from agd.data.catalog import dataset_info
from agd.jobs.batched import split, stacked
from agd.losses import build_loss
from agd.models.build import build_model
from agd.optim import registry
from agd.plan import cluster, grid
from agd.plan import config as config_schema
from agd.plan.specs import ImageRun

REPO = Path(__file__).resolve().parents[1]
BATCH = 128
EVALUATION = 1.2  # an epoch's test pass and metrics on top of its training steps


def steps_per_second(arch: str, width: int, depth: int | None, runs: int, steps: int, device: torch.device) -> float:
    """AGD steps per second of `runs` runs stepped together (one network when runs == 1)."""
    loss_fn = build_loss("mse", 10)
    models, optimizers = [], []
    for seed in range(runs):
        torch.manual_seed(seed)
        model = build_model(arch, input_shape=(3, 32, 32), num_classes=10, depth=depth, width=width).to(device)
        optimizers.append(registry.get("agd").build(registry.IMAGE, model, ImageRun(arch=arch, depth=depth,
                                                                                     width=width)))
        models.append(model)
    net = models[0] if runs == 1 else stacked(models)
    x = torch.randn(BATCH, 3 * runs, 32, 32, device=device)
    y = torch.randint(0, 10, (runs, BATCH), device=device)

    def step() -> None:
        outputs = [net(x)] if runs == 1 else split(net(x), runs)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        sum(loss_fn(out, labels) for out, labels in zip(outputs, y)).backward()
        for opt in optimizers:
            opt.step()

    for _ in range(10):  # warm-up: cuDNN's autotuner, allocator
        step()
    synchronize(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return steps / (time.perf_counter() - began)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else float("nan")


def paper_runs() -> list[dict]:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config_schema.validate(config)
    runs = grid.runs(config)
    return runs[runs["enabled"]].to_dict("records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        print(torch.cuda.get_device_name(device))

    measured = {}
    for name, arch, width, depth, runs in (("FCN 8x256 alone", "fcn", 256, 8, 1),
                                           ("FCN 8x256, bundle of 8", "fcn", 256, 8, 8),
                                           ("ResNet-18", "resnet18", 64, None, 1),
                                           ("VGG-16", "vgg16", 64, None, 1)):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rate = steps_per_second(arch, width, depth, runs, args.steps, device)
        measured[name] = rate
        print(f"{name:24s} {rate:8.1f} steps/s ({rate * runs:8.1f} run-steps/s), peak memory "
              f"{peak_memory_gb(device):.2f} GB")
    speedup = 8 * measured["FCN 8x256, bundle of 8"] / measured["FCN 8x256 alone"]
    print(f"bundle of 8 FCNs: {speedup:.2f}x the runs per second of one FCN alone")

    # Seconds per step from the measurements: FCNs scale with their weights (the bundle's rate per run), the
    # conv nets as measured at width 64.
    fcn_weights = cluster.fcn_million_weights(dict(dataset="cifar10", width=256, depth=8))
    fcn_run_steps = 8 * measured["FCN 8x256, bundle of 8"]
    per_step = {"fcn": lambda run: cluster.fcn_million_weights(run) / fcn_weights / fcn_run_steps,
                "resnet18": lambda run: 1 / measured["ResNet-18"], "vgg16": lambda run: 1 / measured["VGG-16"]}
    model_hours = measured_hours = 0.0
    for run in paper_runs():
        steps = (run["epochs"] + 1) * -(-dataset_info(run["dataset"]).train_size // run["batch_size"])
        model_hours += cluster.training_seconds(run) / 3600
        measured_hours += EVALUATION * steps * per_step[run["arch"]](run) * BATCH / run["batch_size"] / 3600
    print(f"paper grid (ImageNet aside): {model_hours:.0f} GPU-hours by agd.plan.cluster's model, "
          f"{measured_hours:.0f} from these measurements (FCNs in bundles of 8)")


if __name__ == "__main__":
    main()
