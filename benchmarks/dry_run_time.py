"""What planning costs: `snakemake -n --quiet` of the paper grid (config.yaml as it is) in an empty working
directory, for this tree and, with --rev, an earlier commit exported beside it, the two timed in turns in one run
of this script so that a busy machine slows both alike.

    python benchmarks/dry_run_time.py [--rev main] [--repeats 5]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run_seconds(snakefile: Path, workdir: Path) -> float:
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), "-n",
                           "--quiet"], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the dry run of {snakefile} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - began


def export(rev: str, into: Path) -> Path:
    """The tree of `rev`, written out (git archive); its Snakefile puts its own src/ first on the path."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True).stdout
    subprocess.run(["tar", "x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", help="an earlier commit to time beside this tree")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"this tree": REPO}
        if args.rev:
            trees[args.rev] = export(args.rev, Path(tempfile.mkdtemp(dir=scratch)))
        times = {name: [] for name in trees}
        for attempt in range(args.repeats + 1):  # the first round warms the file cache
            for name, tree in trees.items():
                workdir = Path(tempfile.mkdtemp(dir=scratch))
                (workdir / "config.yaml").write_text((tree / "config.yaml").read_text())
                seconds = dry_run_seconds(tree / "Snakefile", workdir)
                if attempt:
                    times[name].append(seconds)
    for name, measured in times.items():
        print(f"{name}: median {statistics.median(measured):.2f} s over {len(measured)} dry runs")
    if args.rev:
        ratio = statistics.median(times["this tree"]) / statistics.median(times[args.rev])
        print(f"this tree / {args.rev}: {ratio:.2f}")


if __name__ == "__main__":
    main()
