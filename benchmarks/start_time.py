"""What a training process costs before it trains: `agd-train` of a tiny FCN for 0 epochs (start, imports, data,
model, optimizer, the pass at init over mnist5k's 4000 images, run.json), against `import torch` alone, for this
tree and, with --rev, an earlier commit checked out beside it, measured in one run of this script.

    python benchmarks/start_time.py [--rev 27ffe6a] [--repeats 5]

The data directory is warmed first (its parsed-tensor cache written), as it is for every job but the first.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = ["--arch", "fcn", "--dataset", "mnist5k", "--depth", "2", "--width", "16", "--epochs", "0", "--device", "cpu",
       "--threads", "1"]


def median_seconds(command: list[str], repeats: int, env: dict | None = None, fresh_out: Path | None = None) -> float:
    times = []
    for attempt in range(repeats + 1):  # the first one warms the file cache and the data directory
        extra = ["--out", str(fresh_out / str(attempt))] if fresh_out else []
        began = time.perf_counter()
        done = subprocess.run([*command, *extra], capture_output=True, text=True, env=env)
        if done.returncode != 0:
            sys.exit(f"{' '.join(command[:4])} failed:\n{done.stderr[-2000:]}")
        if attempt:
            times.append(time.perf_counter() - began)
    return statistics.median(times)


def tree_module(src: Path) -> str:
    """The training job's module in a checkout (it moved into agd.jobs)."""
    return "agd.jobs.train" if (src / "agd/jobs/train.py").exists() else "agd.train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", help="an earlier commit to measure beside this tree")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    trees = {"this tree": REPO / "src"}
    with tempfile.TemporaryDirectory(prefix="start-time-") as scratch:
        scratch = Path(scratch)
        if args.rev:
            checkout = scratch / "rev"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(checkout), args.rev],
                           check=True, capture_output=True)
            trees = {args.rev: checkout / "src", **trees}
        try:
            torch_import = median_seconds([python, "-c", "import torch"], args.repeats)
            print(f"import torch alone: {torch_import:.2f} s (median of {args.repeats})")
            for name, src in trees.items():
                data = scratch / f"data-{len(name)}"
                data.mkdir()
                env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}
                command = [python, "-m", tree_module(src), *RUN, "--data-dir", str(data)]
                seconds = median_seconds(command, args.repeats, env, scratch / f"out-{len(name)}")
                print(f"{name}: agd-train to the end of epoch 0 in {seconds:.2f} s, "
                      f"{seconds - torch_import:.2f} s beyond importing torch")
        finally:
            if args.rev:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(scratch / "rev")],
                               capture_output=True)


if __name__ == "__main__":
    main()
