"""Prepare a text's token files (train.bin, val.bin, meta.json) once, before any language-model job needs them."""

import argparse
import sys

from agd.data.text import TEXTS, load_text, prepare_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agd.jobs.prepare_text", description=__doc__)
    parser.add_argument("name", choices=TEXTS)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--root", help="a local copy of the text (see agd.data.text.prepare_text)")
    parser.add_argument("--synthetic", action="store_true",
                        help="random tokens of the text's vocabulary instead of the text (the smoke run)")
    args = parser.parse_args(argv)
    try:
        directory = prepare_text(args.name, args.data_dir, root=args.root, synthetic=args.synthetic)
        data = load_text(args.name, args.data_dir, device="cpu", prepare=False)
    except (RuntimeError, FileNotFoundError, ValueError) as e:
        print(f"prepare_text: {e}", file=sys.stderr)
        return 1
    print(f"{data.name}: vocabulary {data.vocab_size}, {data.train_tokens:,} training and {data.val_tokens:,} "
          f"validation tokens, unigram entropy {data.unigram_entropy:.4f} nats/token, in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
