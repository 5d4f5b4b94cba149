"""How the workflow starts one training run: on the CPU, or on GPUs it leases, data-parallel over several.

    python -m agd.jobs.launch --gpus K [--module agd.jobs.train_lm] -- TRAINING-JOB-ARGUMENTS...

K = 0 runs the training job (agd.jobs.train unless --module names another: agd.jobs.bundle for several runs,
agd.jobs.train_lm, agd.jobs.lm_bundle for several GPT runs) as it is; K >= 1 leases K free GPUs (agd.jobs.gpu_lease; a scheduler's CUDA_VISIBLE_DEVICES
is respected), or with --share one job slot of a GPU, and for K > 1 starts one process per GPU with torchrun
and --distribute; on a machine without GPUs it refuses (exit 2) rather than train on the CPU. The process is
replaced (exec), so signals and the exit code are the training job's.
"""

import argparse
import os
import sys

from agd.jobs import gpu_lease
from agd.plan.specs import BUNDLE_MODULE, LM_BUNDLE_MODULE, SPECS, ImageRun

JOBS = (*(spec.module for spec in SPECS.values()), BUNDLE_MODULE, LM_BUNDLE_MODULE)


def training_command(gpus: int, train_args: list[str], module: str = ImageRun.module) -> list[str]:
    if gpus > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                "-m", module, "--distribute", *train_args]
    return [sys.executable, "-m", module, *train_args]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agd.jobs.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=0, help="GPUs for this run (0: CPU)")
    parser.add_argument("--slots-per-gpu", type=int, default=1, help="jobs that may share one GPU (agd-gpu-lease)")
    parser.add_argument("--share", action="store_true", help="take one job slot of a GPU instead of a whole one")
    parser.add_argument("--module", choices=JOBS, default=ImageRun.module, help="the training job to start")
    parser.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the agd-train arguments")
    args = parser.parse_args(argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.gpus < 0:
        parser.error(f"--gpus {args.gpus}: use 0 (CPU) or more")
    command = training_command(args.gpus, train_args, args.module)
    if args.gpus == 0:
        os.execv(command[0], command)
    shared = ["--share"] if args.share else []
    return gpu_lease.main(["--count", str(args.gpus), "--slots-per-gpu", str(args.slots_per_gpu), *shared, "--",
                           *command])


if __name__ == "__main__":
    sys.exit(main())
