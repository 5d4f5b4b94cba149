"""Download CIFAR-10/100 and MNIST into a data directory once, before any training job needs them."""

import argparse
import sys
from pathlib import Path

from agd.data.sources import read_raw
from agd.data.catalog import DOWNLOADABLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agd.jobs.download", description=__doc__)
    parser.add_argument("datasets", nargs="+", choices=DOWNLOADABLE)
    parser.add_argument("--data-dir", default="data")
    args = parser.parse_args(argv)
    for name in args.datasets:
        try:
            raw = read_raw(name, Path(args.data_dir), download=True)
        except RuntimeError as e:
            print(f"download: {e}", file=sys.stderr)
            return 1
        print(f"{name}: {len(raw.train_labels)} training and {len(raw.test_labels)} test images in {args.data_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
