"""What a person with one GPU runs to know that this project's GPU paths work, in at most 8 minutes.

Each check prints PASS, FAIL or SKIP with what it measured, then a throughput table:

  stacked vs solo      one stacked network against each run alone: float64 gradients equal to 1e-12, and float32
                       training drift within 10 times that of a chaos control (each run alone with every initial
                       weight moved by one unit in the last place: how far rounding alone carries a run)
  bundle stacked       the bundle job (python -m agd.jobs.bundle) with --stack yes against --stack no
  memory model         a stacked cohort's peak memory against agd.jobs.memory's count (CUDA)
  GPU lease            agd-gpu-lease with two slots per GPU: shared jobs pack, a whole-GPU job gets a whole GPU
  LM bf16 + compile    the GPT job with bf16 autocast and --compile auto against float32 eager (CUDA)
  torchrun, one rank   one NCCL rank (gloo on the CPU) against one process
  two ranks            two ranks (NCCL on two GPUs, else gloo on the CPU) against one process, SyncBatchNorm
  peers                each learning-rate-free peer and Muon steps on the device (needs the carried wheels)

Everything runs on data made on the device: nothing is downloaded. It needs torch, numpy, pandas, tqdm and
filelock, which a CUDA PyTorch image has, and imports the project from src/; the peers' packages travel as
the wheels benchmarks/fetch_gpu_wheels.sh puts in benchmarks/wheels/ (added to the path from there).

    python benchmarks/gpu_check.py [--device cuda|cpu] [--json FILE]

Exit status 0 when no check fails. --device cpu runs the same checks, small, on the CPU (CI does).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WHEELS = REPO / "benchmarks" / "wheels"
IMPORT_PATH = [str(REPO / "src"), *(str(wheel) for wheel in sorted(WHEELS.glob("*.whl")))]
sys.path[:0] = IMPORT_PATH

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from agd.data.synthetic import made_up_text  # noqa: E402
from agd.jobs import batched, gpu_lease, memory  # noqa: E402
from agd.losses import build_loss  # noqa: E402
from agd.models.build import build_model  # noqa: E402
from agd.optim import registry  # noqa: E402
from agd.plan.specs import ImageRun  # noqa: E402

# Sizes per device: the paper's networks on a GPU; tiny ones on the CPU, where only the paths are checked.
SIZES = {
    "cuda": dict(fcn_depth=8, fcn_width=256, conv_width=64, small_width=16, batch=128, drift_steps=20,
                 bundle_epochs=10, lm=["--n-layer", "4", "--n-head", "4", "--n-embd", "256", "--block-size", "128",
                                       "--batch-size", "32", "--max-iters", "300", "--eval-interval", "100",
                                       "--eval-iters", "20"], timed_steps=50),
    "cpu": dict(fcn_depth=4, fcn_width=16, conv_width=4, small_width=4, batch=8, drift_steps=3, bundle_epochs=2,
                lm=["--n-layer", "1", "--n-head", "1", "--n-embd", "32", "--block-size", "32", "--batch-size", "8",
                    "--max-iters", "20", "--eval-interval", "10", "--eval-iters", "2"], timed_steps=3),
}
PEERS = ("prodigy", "dadapt-adam", "dog", "sf-adamw", "muon")


@dataclass
class Check:
    name: str
    status: str = "PASS"  # PASS, FAIL or SKIP
    detail: str = ""


@dataclass
class Context:
    device: torch.device
    sizes: dict
    work: Path
    env: dict
    throughput: dict = field(default_factory=dict)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


class Failed(Exception):
    """A check's finding: FAIL with this message."""


class Skipped(Exception):
    """A check that does not apply here: SKIP with this message."""


def run(command: list[str], ctx: Context, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or ctx.env, cwd=ctx.work)
    if done.returncode != 0:
        raise Failed(f"{' '.join(command[:6])} ... exited {done.returncode}: {done.stderr.strip()[-1500:]}")
    return done


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- stacked networks, in this process ---


def seeded_models(arch: str, ctx: Context, runs: int, width: int, dtype=torch.float32):
    shape = (3, 32, 32)
    spec = ImageRun(arch=arch, dataset="cifar10", depth=ctx.sizes["fcn_depth"] if arch == "fcn" else None,
                    width=width)
    models = []
    for seed in range(runs):
        torch.manual_seed(seed)
        models.append(build_model(arch, input_shape=shape, num_classes=10, depth=spec.depth, width=width)
                      .to(ctx.device, dtype))
    return spec, models


def batches(ctx: Context, steps: int, runs: int, dtype=torch.float32, batch: int | None = None):
    generator = torch.Generator().manual_seed(1)
    batch = batch or ctx.sizes["batch"]
    for _ in range(steps):
        x = [torch.randn(batch, 3, 32, 32, generator=generator).to(ctx.device, dtype) for _ in range(runs)]
        y = [torch.randint(0, 10, (batch,), generator=generator).to(ctx.device) for _ in range(runs)]
        yield x, y


def stacked_float64_gradients(ctx: Context) -> str:
    loss_fn = build_loss("mse", 10)
    worst = {}
    for arch, width in (("fcn", ctx.sizes["fcn_width"]), ("resnet18", ctx.sizes["small_width"])):
        _, models = seeded_models(arch, ctx, 3, width, torch.float64)
        (x, y), = batches(ctx, 1, 3, torch.float64, batch=16)
        for model, xi, yi in zip(models, x, y):
            loss_fn(model(xi), yi).backward()
        solo = [[p.grad.clone() for p in model.parameters()] for model in models]
        for model in models:
            model.zero_grad(set_to_none=True)
        logits = batched.split(batched.stacked(models)(batched.stack_inputs(x)), 3)
        sum(loss_fn(out, yi) for out, yi in zip(logits, y)).backward()
        worst[arch] = max(((p.grad - g).abs().max() / g.abs().max().clamp_min(1e-300)).item()
                          for model, grads in zip(models, solo) for p, g in zip(model.parameters(), grads))
    if max(worst.values()) > 1e-12:
        raise Failed(f"float64 cross-talk: {worst}")
    return ", ".join(f"{arch} {value:.1e}" for arch, value in worst.items())


def trained(arch: str, width: int, ctx: Context, runs: int, stacked: bool, control: bool = False) -> list[torch.Tensor]:
    """`runs` runs (seeds 0, 1, ...) after some AGD steps, stacked as one network or each alone; as the chaos
    control, each alone with every initial weight moved by one unit in the last place (a rounding-sized change,
    which training amplifies as it amplifies any rounding). Each run's weights after, flattened."""
    spec, models = seeded_models(arch, ctx, runs, width)
    optimizers = []
    for seed, model in enumerate(models):
        torch.manual_seed(seed)  # AGD's orthogonal init draws from it: every call starts the same runs
        optimizers.append(registry.get("agd").build(registry.IMAGE, model, spec))
    if control:
        with torch.no_grad():
            for p in (p for model in models for p in model.parameters()):
                p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    loss_fn = build_loss("mse", 10)
    net = batched.stacked(models) if stacked else None
    for x, y in batches(ctx, ctx.sizes["drift_steps"], runs):
        logits = (batched.split(net(batched.stack_inputs(x)), runs) if stacked
                  else [model(xi) for model, xi in zip(models, x)])
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        sum(loss_fn(out, yi) for out, yi in zip(logits, y)).backward()
        for opt in optimizers:
            opt.step()
    return [torch.cat([p.detach().flatten().double() for p in model.parameters()]) for model in models]


def float32_drift_against_chaos(ctx: Context) -> str:
    """Stacked against solo after some AGD steps, beside the chaos control against solo: float rounding may make
    a stacked run drift from its solo run (deep nets amplify it), but no further than other kernels do."""
    found = []
    for arch, width in (("fcn", ctx.sizes["fcn_width"]), ("resnet18", ctx.sizes["small_width"])):
        solo = trained(arch, width, ctx, 4, stacked=False)
        stacked = trained(arch, width, ctx, 4, stacked=True)
        control = trained(arch, width, ctx, 4, stacked=False, control=True)
        drift = max(((a - b).norm() / b.norm()).item() for a, b in zip(stacked, solo))
        chaos = max(((a - b).norm() / b.norm()).item() for a, b in zip(control, solo))
        found.append(f"{arch} {drift:.1e} (control {chaos:.1e})")
        if drift > 10 * chaos + 1e-9:
            raise Failed(f"float32 stacked runs drift further than rounding does: {', '.join(found)}")
    return ", ".join(found) + f" after {ctx.sizes['drift_steps']} steps"


def memory_model(ctx: Context) -> str:
    if not ctx.cuda:
        raise Skipped("peak memory is measured on CUDA")
    runs, width = 4, ctx.sizes["conv_width"]
    spec = ImageRun(arch="resnet18", dataset="cifar10", width=width, batch_size=ctx.sizes["batch"])
    predicted = runs * memory.stacked_run_bytes(spec, (3, 32, 32), 10)
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(ctx.device)
    torch.cuda.reset_peak_memory_stats(ctx.device)
    trained("resnet18", width, ctx, runs, stacked=True)
    measured = torch.cuda.max_memory_allocated(ctx.device) - before
    torch.cuda.empty_cache()
    said = f"4 stacked ResNet-18 at batch {spec.batch_size}: {measured / 2**30:.2f} GiB measured, " \
           f"{predicted / 2**30:.2f} GiB counted"
    if not measured <= predicted <= 4 * measured:
        raise Failed(said + " (the count must hold the peak, within 4 times it)")
    return said


# --- the jobs, as the workflow runs them ---


def run_flags(ctx: Context, arch: str, width: int, epochs: int, depth: int | None = None) -> list[str]:
    """A run's own flags (agd.plan.specs.ImageRun) on CIFAR-10's shape."""
    flags = ["--arch", arch, "--dataset", "cifar10", "--width", str(width), "--epochs", str(epochs),
             "--train-bs", str(ctx.sizes["batch"])]
    return flags + (["--depth", str(depth)] if depth else [])


def execution_flags(ctx: Context, device: str | None = None) -> list[str]:
    """Where and on what a run trains here: random data of the dataset's shape (nothing downloaded)."""
    return ["--synthetic-data", "--device", device or ctx.device.type, "--checkpoint-every", "0"]


def metrics(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "metrics.csv").drop(columns=["time_s"])


def compare(a: Path, b: Path, rtol: float, what: str) -> float:
    left, right = metrics(a), metrics(b)
    columns = [c for c in ("train_loss", "test_loss", "eta_mean", "update_mean") if left[c].notna().any()]
    if len(left) != len(right):
        raise Failed(f"{what}: {len(left)} rows against {len(right)}")
    worst = max((abs(left[c] - right[c]) / right[c].abs().clip(lower=1e-12)).max() for c in columns)
    if not worst <= rtol:
        raise Failed(f"{what}: relative difference {worst:.2e} over {', '.join(columns)}, more than {rtol:g}")
    return worst


def bundle_stacked(ctx: Context) -> str:
    members = {"agd": "--optimizer agd", "agd-seed1": "--optimizer agd --seed 1",
               "adam": "--optimizer adam --lr 1e-3", "sgd": "--optimizer sgd --lr 0.1"}
    base = " ".join(run_flags(ctx, "fcn", ctx.sizes["fcn_width"], ctx.sizes["bundle_epochs"], ctx.sizes["fcn_depth"]))
    seconds = {}
    for stack in ("yes", "no"):
        command = [sys.executable, "-m", "agd.jobs.bundle", "--stack", stack, *execution_flags(ctx)]
        for name, flags in members.items():
            command += ["--member", str(ctx.work / f"bundle-{stack}" / name), f"{base} {flags}"]
        began = time.perf_counter()
        run(command, ctx)
        seconds[stack] = time.perf_counter() - began
    rtol = 1e-2 if ctx.cuda else 1e-4
    worst = max(compare(ctx.work / "bundle-yes" / name, ctx.work / "bundle-no" / name, rtol, f"{name} stacked")
                for name in members)
    return (f"4 FCN runs, {ctx.sizes['bundle_epochs']} epochs: metrics within {worst:.1e}; {seconds['yes']:.1f} s "
            f"stacked, {seconds['no']:.1f} s one after another")


def gpu_lease_slots(ctx: Context) -> str:
    """Two shared jobs share one GPU; a whole-GPU job gets another GPU, or waits until they end."""
    lease = [sys.executable, gpu_lease.__file__, "--slots-per-gpu", "2"]
    env = {k: v for k, v in ctx.env.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["AGD_GPU_LOCK_DIR"] = str(ctx.work / "locks")
    if ctx.cuda:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            env["AGD_GPU_IDS"] = visible  # else nvidia-smi lists them
        probe = "import os, torch; assert torch.cuda.is_available(); print(os.environ['CUDA_VISIBLE_DEVICES'])"
    else:
        env["AGD_GPU_IDS"] = "0"
        probe = "import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"
    stop = ctx.work / "lease-stop"
    hold = f"import os, time\nprint(os.environ['CUDA_VISIBLE_DEVICES'], flush=True)\n" \
           f"while not os.path.exists({str(stop)!r}): time.sleep(0.05)"
    shared = [subprocess.Popen([*lease, "--share", "--", sys.executable, "-c", hold], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        places = [job.stdout.readline().strip() for job in shared]
        if not places[0] or places[0] != places[1]:
            raise Failed(f"two shared jobs went to GPUs {places}, not both to one: "
                         f"{shared[0].stderr.read() if not places[0] else ''}")
        devices = gpu_lease.available_devices(env)
        whole = subprocess.Popen([*lease, "--", sys.executable, "-c", probe], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if len(devices) > 1:
            got, _ = whole.communicate(timeout=120)
            if whole.returncode != 0 or got.strip() == places[0]:
                raise Failed(f"the whole-GPU job got {got.strip()!r} beside shared jobs on GPU {places[0]}")
            return f"two shared jobs on GPU {places[0]}, a whole-GPU job on GPU {got.strip()} at once"
        time.sleep(2)
        if whole.poll() is not None:
            raise Failed("the whole-GPU job did not wait for the GPU its shared jobs hold")
        stop.touch()
        got, said = whole.communicate(timeout=120)
        if whole.returncode != 0 or got.strip() != places[0]:
            raise Failed(f"the whole-GPU job ended {whole.returncode}: {said.strip()[-500:]}")
        return f"two shared jobs on GPU {places[0]}; a whole-GPU job waited for them, then had it"
    finally:
        stop.touch()
        for job in shared:
            job.wait(timeout=30)
            job.stdout.close()
            job.stderr.close()


def lm_run(ctx: Context, name: str, *flags: str) -> tuple[dict, str]:
    """The GPT job on a made-up text: its run.json, and what it said on stderr."""
    text = ctx.work / "text.txt"
    if not text.exists():
        text.write_text(made_up_text(200_000))
    out = ctx.work / "lm" / name
    done = run([sys.executable, "-m", "agd.jobs.train_lm", "--text", "shakespeare_char", "--text-root", str(text),
                "--data-dir", str(ctx.work / "data"), *ctx.sizes["lm"], "--dropout", "0", "--device", ctx.device.type,
                *flags, "--out", str(out)], ctx, timeout=400)
    return json.loads((out / "run.json").read_text()), done.stderr


def lm_bf16_compile(ctx: Context) -> str:
    eager, _ = lm_run(ctx, "float32-eager", "--precision", "float32", "--compile", "no")
    ctx.throughput["GPT tokens/s, float32 eager"] = eager["tokens_per_s"]
    if not ctx.cuda:
        raise Skipped(f"bf16 and compile are CUDA's; float32 eager ran: val loss {eager['final']['val_loss']:.3f}")
    fast, said_there = lm_run(ctx, "bf16-compiled", "--precision", "bfloat16", "--compile", "auto")
    ctx.throughput["GPT tokens/s, bf16 + compile"] = fast["tokens_per_s"]
    a, b = fast["final"]["val_loss"], eager["final"]["val_loss"]
    said = (f"val loss {a:.4f} (bf16, {'compiled' if fast['compiled'] else 'eager'}) against {b:.4f} (float32), "
            f"unigram entropy {eager['text']['unigram_entropy']:.3f}")
    if not fast["compiled"]:
        fallback = [line for line in said_there.splitlines() if line.startswith("--compile auto")]
        raise Failed(f"{fallback[0] if fallback else '--compile auto trained eager'}; {said}")
    if fast["precision"] != "bfloat16" or abs(a - b) > 0.03 * b:
        raise Failed(said)
    return said


def torchrun(ctx: Context, ranks: int, flags: list[str], out: Path) -> None:
    run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", "-m",
         "agd.jobs.train", "--distribute", *flags, "--out", str(out)], ctx)


def resnet_flags(ctx: Context, device: str | None = None) -> list[str]:
    return [*run_flags(ctx, "resnet18", ctx.sizes["small_width"], 2), "--optimizer", "agd", "--log-steps", "2",
            *execution_flags(ctx, device)]


def one_rank(ctx: Context) -> str:
    flags = resnet_flags(ctx)
    baseline = ctx.work / f"one-process-{ctx.device.type}"
    run([sys.executable, "-m", "agd.jobs.train", *flags, "--out", str(baseline)], ctx)
    torchrun(ctx, 1, flags, ctx.work / "one-rank")
    worst = compare(ctx.work / "one-rank", baseline, 1e-3 if ctx.cuda else 1e-5, "one rank")
    return f"ResNet-18 over {'NCCL' if ctx.cuda else 'gloo'}: metrics within {worst:.1e} of one process"


def two_ranks(ctx: Context) -> str:
    if ctx.cuda and torch.cuda.device_count() >= 2:
        flags, backend = resnet_flags(ctx), "NCCL on 2 GPUs"
    else:  # NCCL takes one GPU per rank
        flags, backend = resnet_flags(ctx, "cpu"), "gloo on the CPU"
    baseline = ctx.work / f"one-process-{flags[flags.index('--device') + 1]}"
    if not (baseline / "metrics.csv").exists():
        run([sys.executable, "-m", "agd.jobs.train", *flags, "--out", str(baseline)], ctx)
    torchrun(ctx, 2, flags, ctx.work / "two-ranks")
    worst = compare(ctx.work / "two-ranks", baseline, 1e-3, "two ranks")
    return f"ResNet-18 with SyncBatchNorm, {backend}: metrics within {worst:.1e} of one process"


def peers(ctx: Context) -> str:
    try:
        import dadaptation, dog, prodigyopt, schedulefree  # noqa: F401, E401
    except ImportError as e:
        raise Skipped(f"{e.name} is not here: carry benchmarks/wheels (benchmarks/fetch_gpu_wheels.sh)") from None
    base = " ".join(run_flags(ctx, "fcn", ctx.sizes["fcn_width"], 2, ctx.sizes["fcn_depth"]))
    command = [sys.executable, "-m", "agd.jobs.bundle", *execution_flags(ctx)]
    for name in PEERS:
        flags = f"--optimizer {name}" + (" --lr 0.01" if registry.get(name).tuned else "")
        command += ["--member", str(ctx.work / "peers" / name), f"{base} {flags}"]
    run(command, ctx)
    finals = {name: metrics(ctx.work / "peers" / name)["train_loss"].iloc[-1] for name in PEERS}
    if not all(math.isfinite(value) for value in finals.values()):
        raise Failed(f"final train losses {finals}")
    return ", ".join(f"{name} {value:.3g}" for name, value in finals.items()) + " (final train loss)"


# --- throughput ---


def timed(step, device: torch.device, steps: int) -> float:
    """Seconds per call of `step`, after warm-up (cuDNN's autotuner, the allocator)."""
    for _ in range(3):
        step()
    synchronize(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - began) / steps


def throughput(ctx: Context) -> None:
    loss_fn = build_loss("mse", 10)
    steps = ctx.sizes["timed_steps"]

    def training_step(runs: int, arch: str, width: int):
        spec, models = seeded_models(arch, ctx, runs, width)
        optimizers = [registry.get("agd").build(registry.IMAGE, model, spec) for model in models]
        net = batched.stacked(models) if runs > 1 else models[0]
        (x, y), = batches(ctx, 1, runs)

        def step():
            logits = batched.split(net(batched.stack_inputs(x)), runs) if runs > 1 else [net(x[0])]
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            sum(loss_fn(out, yi) for out, yi in zip(logits, y)).backward()
            for opt in optimizers:
                opt.step()
        return step, models, optimizers

    fcn = ctx.sizes["fcn_width"]
    for runs in (1, 8):
        step, *_ = training_step(runs, "fcn", fcn)
        ctx.throughput[f"FCN {ctx.sizes['fcn_depth']}x{fcn} run-steps/s, {runs} stacked"] = runs / timed(
            step, ctx.device, steps)
    step, models, optimizers = training_step(1, "resnet18", ctx.sizes["conv_width"])
    ctx.throughput[f"ResNet-18 (width {ctx.sizes['conv_width']}) training images/s"] = ctx.sizes["batch"] / timed(
        step, ctx.device, steps)
    spec = ImageRun(arch="resnet18", dataset="cifar10", width=ctx.sizes["conv_width"], optimizer="adam", lr=1e-3)
    adam = registry.get("adam").build(registry.IMAGE, models[0], spec)
    step()  # gradients in place
    agd_ms = 1e3 * timed(optimizers[0].step, ctx.device, steps)
    adam_ms = 1e3 * timed(adam.step, ctx.device, steps)
    ctx.throughput["ResNet-18 optimizer step, ms: AGD"] = agd_ms
    ctx.throughput["ResNet-18 optimizer step, ms: Adam"] = adam_ms
    ctx.throughput["ResNet-18 optimizer step: AGD / Adam"] = agd_ms / adam_ms


# --- the check ---


CHECKS = [
    ("stacked vs solo, float64 gradients", stacked_float64_gradients),
    ("stacked vs solo, float32 drift", float32_drift_against_chaos),
    ("bundle job, stacked vs one after another", bundle_stacked),
    ("memory model of a stacked cohort", memory_model),
    ("GPU lease with slots", gpu_lease_slots),
    ("LM job, bf16 + compile vs float32 eager", lm_bf16_compile),
    ("torchrun, one rank vs one process", one_rank),
    ("two ranks vs one process", two_ranks),
    ("peers step on the device", peers),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("torch sees no CUDA device here; use --device cpu to check the paths on the CPU")
    device = torch.device(args.device)
    if device.type == "cuda":  # as the jobs train (agd.jobs.driver.configure_torch)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        machine = f"{torch.cuda.get_device_name(device)}, {torch.cuda.device_count()} GPU(s)"
    else:
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        machine = "CPU"
    print(f"GPU check on {machine}: torch {torch.__version__}, CUDA {torch.version.cuda}, Python "
          f"{sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*IMPORT_PATH, os.environ.get("PYTHONPATH", "")]).rstrip(":"),
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1" if device.type == "cpu" else "4")}
    began = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as work:
        ctx = Context(device, SIZES[device.type], Path(work), env)
        for name, check in CHECKS:
            started = time.perf_counter()
            try:
                result = Check(name, "PASS", check(ctx))
            except Skipped as e:
                result = Check(name, "SKIP", str(e))
            except Failed as e:
                result = Check(name, "FAIL", str(e))
            except Exception as e:  # a crash is a finding too: say where, and go on
                result = Check(name, "FAIL", f"{type(e).__name__}: {e} ({traceback.format_exc(limit=-1).strip()})")
            results.append(result)
            print(f"{result.status} {name} ({time.perf_counter() - started:.0f} s): {result.detail}", flush=True)
        try:
            throughput(ctx)
        except Exception as e:
            results.append(Check("throughput", "FAIL", f"{type(e).__name__}: {e}"))
            print(f"FAIL throughput: {e}", flush=True)
    print(f"\nthroughput on {machine}:")
    for what, value in ctx.throughput.items():
        print(f"  {what:48s} {value:12,.3f}" if value is not None else f"  {what:48s} {'-':>12s}")
    failed = [r.name for r in results if r.status == "FAIL"]
    print(f"\n{len(results) - len(failed)} of {len(results)} checks passed or skipped"
          + (f"; FAILED: {', '.join(failed)}" if failed else "") + f" ({time.perf_counter() - began:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"device": machine, "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
                                         "checks": [vars(r) for r in results], "throughput": ctx.throughput},
                                        indent=2) + "\n")
    shutil.rmtree(ctx.work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
