"""Many runs in one process against one process per run, measured in one run of this script.

For each set of K runs (a baseline's learning-rate grid on one seed; K seeds of AGD), on mnist5k with an FCN
of depth 8 and width 64, it times K `agd-train` processes one after another, then one bundle of the same runs
(python -m agd.jobs.bundle) training them one after another (--stack no, the CPU default, each run exactly as
agd-train trains it) and stepping them as one stacked network (--stack yes), and prints the ratios.

    python benchmarks/bundle_throughput.py [--epochs 3] [--runs 5] [--threads 1] [--device cpu]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "8", "--width", "64"]


def run_sets(runs: int) -> dict[str, list[list[str]]]:
    rates = [10.0 ** exponent for exponent in range(-runs, 0)]
    return {
        f"Adam learning-rate grid ({runs} rates, seed 0)": [["--optimizer", "adam", "--lr", repr(lr)] for lr in rates],
        f"AGD over {runs} seeds": [["--optimizer", "agd", "--seed", str(seed)] for seed in range(runs)],
    }


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command[:6])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    execution = ["--device", args.device, "--threads", str(args.threads), "--data-dir", "data"]
    python = sys.executable
    print(f"{args.runs} runs of an FCN 8x64 on mnist5k, {args.epochs} epochs each, {args.threads} thread(s), "
          f"{args.device}")
    for title, members in run_sets(args.runs).items():
        root = Path(tempfile.mkdtemp(prefix="bundle-throughput-"))
        try:
            flags = [[*MODEL, "--epochs", str(args.epochs), *member] for member in members]
            solo = sum(timed([python, "-m", "agd.jobs.train", *f, *execution, "--out", str(root / "solo" / str(i))])
                       for i, f in enumerate(flags))
            bundles = {}
            for stack in ("no", "yes"):
                command = [python, "-m", "agd.jobs.bundle", "--stack", stack, *execution]
                for i, f in enumerate(flags):
                    command += ["--member", str(root / stack / str(i)), " ".join(f)]
                bundles[stack] = timed(command)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"{title}:")
        print(f"  {args.runs} agd-train processes      {solo:7.1f} s")
        print(f"  one bundle, one after another {bundles['no']:7.1f} s   {solo / bundles['no']:.2f}x faster")
        print(f"  one bundle, stacked           {bundles['yes']:7.1f} s   {solo / bundles['yes']:.2f}x faster")


if __name__ == "__main__":
    main()
