"""Token streams for language-model training: two character-level texts and GPT-2 tokens of OpenWebText.

prepare_text writes <data_dir>/<name>/{train.bin, val.bin, meta.json} once (uint16 tokens, nanoGPT's layout);
load_text reads them back as a TokenData whose batches depend on (seed, split, index) only; with test_split, the
second half of the validation tokens is held out as a test split.
"""

import json
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

import numpy as np
import torch
from filelock import FileLock

from agd.data.catalog import TEXTS
from agd.io import atomic_write, write_json
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
VAL_FRACTION = 0.1
IN_MEMORY_BYTES = 1 << 30

GPT2_VOCAB_SIZE = 50257
GPT2_EOT = 50256
OPENWEBTEXT_SPLIT_SEED = 2357  # nanoGPT's split of OpenWebText
OPENWEBTEXT_VAL_FRACTION = 0.0005
OPENWEBTEXT_DEPENDENCIES = "openwebtext needs tiktoken (and datasets to download it): pip install tiktoken datasets"

TOKEN_FILES = ("train", "val")
SPLIT_CODES = {"train": 0, "val": 1, "test": 3}  # 2 is the dropout stream of agd.jobs.train_lm
TOKEN_IDS = 1 << 16  # the token files hold uint16 ids
META = "meta.json"


def fetch(url: str, dest: Path) -> None:
    """Download url to dest; a reader never sees a half-written file."""
    with urllib.request.urlopen(url, timeout=60) as response:
        atomic_write(Path(dest), lambda f: shutil.copyfileobj(response, f))


def prepare_text(name: str, data_dir: str | Path, *, root: str | Path | None = None,
                 synthetic: bool = False) -> Path:
    """Write <data_dir>/<name>/{train.bin, val.bin, meta.json} and return that directory; with `synthetic`,
    random tokens of the text's vocabulary instead of the text (`prepare_synthetic`).

    Idempotent: once meta.json exists (it is written last, so the directory is complete) nothing is done.
    A FileLock at <data_dir>/<name>.lock keeps two jobs from preparing the same text at once.
    """
    if name not in TEXTS:
        raise ValueError(f"unknown text {name!r}; choose one of {', '.join(TEXTS)}")
    directory = Path(data_dir) / name
    if (directory / META).exists():
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(Path(data_dir) / f"{name}.lock")):
        if not (directory / META).exists():  # another job may have finished while we waited
            if synthetic:
                prepare_synthetic(directory, name)
            else:
                PREPARERS[name](directory, root)
    return directory


def prepare_shakespeare(directory: Path, root: str | Path | None) -> None:
    if root is not None:
        path = Path(root)
        path = path / "input.txt" if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no tiny shakespeare text at {path}. Fix: pass root=/path/to/input.txt "
                                    f"(the file downloaded from {SHAKESPEARE_URL})")
        source = str(path)
    else:
        path, source = directory / "input.txt", SHAKESPEARE_URL
        if not path.exists():
            try:
                fetch(SHAKESPEARE_URL, path)
            except OSError as error:  # URLError is an OSError
                raise RuntimeError(
                    f"could not download tiny shakespeare from {SHAKESPEARE_URL}: {error}. Fix: run on a machine "
                    f"with internet access, or give a local copy of input.txt: shakespeare_char.root in config.yaml "
                    f"(--text-root for agd-train-lm, root= here)"
                ) from error
    write_char_text(directory, "shakespeare_char", path.read_text(encoding="utf-8"), source)


def prepare_python_docs(directory: Path, root: str | Path | None) -> None:
    if root is not None:
        raise ValueError(f"python_docs_char reads the standard library's pydoc_data.topics; it takes no root "
                         f"(got {root}). Fix: leave the text root unset")
    try:
        from pydoc_data.topics import topics
    except ImportError as error:
        raise RuntimeError("python_docs_char reads the module pydoc_data.topics, which this Python installation "
                           "lacks. Fix: use a full CPython installation (it ships pydoc_data)") from error
    text = "\n".join(topics[key] for key in sorted(topics))
    write_char_text(directory, "python_docs_char", text, "pydoc_data.topics")


def write_char_text(directory: Path, name: str, text: str, source: str) -> None:
    """Characters as tokens, indexed in sorted order; the first 90% train, the rest validation (as nanoGPT)."""
    code_points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    vocab = np.unique(code_points)  # sorted by code point, the order of sorted(set(text))
    if len(vocab) > TOKEN_IDS:
        raise RuntimeError(f"{name} has {len(vocab):,} distinct characters, more than the {TOKEN_IDS:,} token ids "
                           "of the uint16 token files; a character-level model cannot take it. Fix: use a text with "
                           "fewer distinct characters, or a BPE tokenizer (openwebtext)")
    tokens = np.searchsorted(vocab, code_points).astype(np.uint16)
    split = int(len(tokens) * (1 - VAL_FRACTION))
    train, val = tokens[:split], tokens[split:]
    if len(train) < 2 or len(val) < 2:
        raise RuntimeError(f"{name} has only {len(tokens)} characters, too few to split into train and validation "
                           f"text. Fix: use the full text")
    write_tokens(directory / "train.bin", [train])
    write_tokens(directory / "val.bin", [val])
    write_meta(directory, name=name, tokenizer="char", vocab_size=len(vocab), train_tokens=len(train), val=val,
               source=source, itos=[chr(c) for c in vocab])


def prepare_openwebtext(directory: Path, root: str | Path | None) -> None:
    if root is None:
        return download_openwebtext(directory)
    root = Path(root)
    if (root / "train.bin").is_file() and (root / "val.bin").is_file():
        return link_token_files(directory, root)
    documents = sorted(root.glob("*.txt")) if root.is_dir() else []
    if not documents:
        raise FileNotFoundError(f"{root} holds neither nanoGPT's train.bin and val.bin nor *.txt documents. Fix: "
                                f"pass as root the folder of nanoGPT's prepared openwebtext, or a folder of .txt files")
    tokenize_documents(directory, root, documents)


def link_token_files(directory: Path, root: Path) -> None:
    """Hard links (or symlinks across file systems) to nanoGPT's token files: never a copy of 17 GB."""
    for split in ("train.bin", "val.bin"):
        source, target = root / split, directory / split
        if target.exists() and os.path.samefile(source, target):
            continue  # linked by an earlier, interrupted run (or root is this very directory)
        if os.path.getsize(source) % 2:
            raise RuntimeError(f"{source} has an odd number of bytes, so it is not uint16 tokens. Fix: pass as root "
                               f"the folder written by nanoGPT's data/openwebtext/prepare.py")
        target.unlink(missing_ok=True)
        try:
            os.link(source, target)
        except OSError:
            os.symlink(source.resolve(), target)
    val = np.memmap(directory / "val.bin", dtype=np.uint16, mode="r")
    if len(val) and int(val.max()) >= GPT2_VOCAB_SIZE:
        raise RuntimeError(f"{root / 'val.bin'} holds token {int(val.max())}, outside GPT-2's vocabulary of "
                           f"{GPT2_VOCAB_SIZE}. Fix: pass the folder of nanoGPT's GPT-2 tokens of openwebtext")
    write_meta(directory, name="openwebtext", tokenizer="gpt2", vocab_size=GPT2_VOCAB_SIZE,
               train_tokens=os.path.getsize(directory / "train.bin") // 2, val=val, source=str(root))


def tokenize_documents(directory: Path, root: Path, documents: list[Path]) -> None:
    """GPT-2 tokens of each .txt file, each ended by the end-of-text token; the last 10% of files validate."""
    if len(documents) < 2:
        raise RuntimeError(f"{root} holds a single .txt document; train and validation need one each at least. "
                           f"Fix: split the text into several .txt files")
    encoding = gpt2_encoding()
    val_count = max(1, int(len(documents) * VAL_FRACTION))

    def tokens(paths: list[Path]) -> Iterable[np.ndarray]:
        for path in paths:
            ids = encoding.encode_ordinary(path.read_text(encoding="utf-8")) + [GPT2_EOT]
            yield np.array(ids, dtype=np.uint16)

    train_tokens = write_tokens(directory / "train.bin", tokens(documents[:-val_count]))
    write_tokens(directory / "val.bin", tokens(documents[-val_count:]))
    val = np.fromfile(directory / "val.bin", dtype=np.uint16)
    write_meta(directory, name="openwebtext", tokenizer="gpt2", vocab_size=GPT2_VOCAB_SIZE,
               train_tokens=train_tokens, val=val, source=str(root))


def download_openwebtext(directory: Path) -> None:
    """nanoGPT's recipe: HuggingFace's openwebtext, 0.05% split off for validation with seed 2357."""
    try:
        import datasets
    except ImportError as error:
        raise RuntimeError(OPENWEBTEXT_DEPENDENCIES) from error
    encoding = gpt2_encoding()
    workers = max(1, min(8, os.cpu_count() or 1))
    try:
        dataset = datasets.load_dataset("openwebtext", num_proc=workers)
    except OSError as error:  # connection errors are OSErrors
        raise RuntimeError(f"could not download openwebtext from the HuggingFace hub: {error}. Fix: run on a "
                           f"machine with internet access, or pass as root a folder of nanoGPT's train.bin and "
                           f"val.bin (openwebtext.root in config.yaml)") from error
    splits = dataset["train"].train_test_split(test_size=OPENWEBTEXT_VAL_FRACTION, seed=OPENWEBTEXT_SPLIT_SEED,
                                               shuffle=True)

    def tokenize(example: dict) -> dict:
        return {"ids": encoding.encode_ordinary(example["text"]) + [GPT2_EOT]}

    counts = {}
    for split, part in (("train", splits["train"]), ("val", splits["test"])):
        tokenized = part.map(tokenize, remove_columns=["text"], num_proc=workers, desc=f"tokenizing {split}")
        shards = (tokenized.shard(num_shards=1024, index=i, contiguous=True).with_format("numpy")
                  for i in range(1024))
        counts[split] = write_tokens(directory / f"{split}.bin",
                                     (np.concatenate(shard["ids"]).astype(np.uint16) for shard in shards))
    write_meta(directory, name="openwebtext", tokenizer="gpt2", vocab_size=GPT2_VOCAB_SIZE,
               train_tokens=counts["train"], val=np.memmap(directory / "val.bin", dtype=np.uint16, mode="r"),
               source="huggingface:openwebtext")


def gpt2_encoding():
    try:
        import tiktoken
    except ImportError as error:
        raise RuntimeError(OPENWEBTEXT_DEPENDENCIES) from error
    try:
        return tiktoken.get_encoding("gpt2")
    except OSError as error:  # tiktoken downloads the BPE ranks on first use
        raise RuntimeError(f"tiktoken could not load the gpt2 encoding: {error}. Fix: run once on a machine with "
                           f"internet access, or point TIKTOKEN_CACHE_DIR at a cache holding it") from error


# The texts' vocabularies, for synthetic stand-ins: the char-level texts' character sets are at most this large.
VOCABULARY = {"shakespeare_char": 65, "python_docs_char": 128, "openwebtext": GPT2_VOCAB_SIZE}
SYNTHETIC_TOKENS = 1 << 16
SYNTHETIC_SEED = 0


def prepare_synthetic(directory: Path, name: str) -> None:
    """A stand-in for text `name` (the smoke run): uniform random tokens of its vocabulary, in the files and
    format its own preparer writes, so that everything downstream reads it unchanged. No number trained on it
    means anything."""
    vocab = VOCABULARY[name]
    rng = np.random.default_rng(SYNTHETIC_SEED)
    train, val = (rng.integers(0, vocab, SYNTHETIC_TOKENS, dtype=np.uint16) for _ in range(2))
    write_tokens(directory / "train.bin", [train])
    write_tokens(directory / "val.bin", [val])
    itos = [chr(32 + i) for i in range(vocab)] if name.endswith("_char") else None
    write_meta(directory, name=name, tokenizer="char" if itos else "gpt2", vocab_size=vocab, train_tokens=len(train),
               val=val, source=f"synthetic: {SYNTHETIC_TOKENS} uniform tokens (smoke run)", itos=itos)


PREPARERS: dict[str, Callable[[Path, str | Path | None], None]] = {
    "shakespeare_char": prepare_shakespeare,
    "python_docs_char": prepare_python_docs,
    "openwebtext": prepare_openwebtext,
}


def write_tokens(path: Path, chunks: Iterable[np.ndarray]) -> int:
    """Stream uint16 chunks into path atomically; return the number of tokens written."""
    written = 0

    def write(f: IO[bytes]) -> None:
        nonlocal written
        for chunk in chunks:
            f.write(np.ascontiguousarray(chunk, dtype=np.uint16).tobytes())
            written += len(chunk)

    atomic_write(path, write)
    return written


def unigram_entropy(tokens: np.ndarray, vocab_size: int) -> float:
    """Entropy (nats/token) of the tokens' own frequencies: the loss of the best context-free predictor."""
    counts = np.bincount(np.asarray(tokens), minlength=vocab_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def write_meta(directory: Path, *, name: str, tokenizer: str, vocab_size: int, train_tokens: int, val: np.ndarray,
               source: str, itos: list[str] | None = None) -> None:
    meta = {"name": name, "tokenizer": tokenizer, "vocab_size": int(vocab_size), "train_tokens": int(train_tokens),
            "val_tokens": len(val), "unigram_entropy": unigram_entropy(val, vocab_size), "source": source}
    if itos is not None:
        meta["itos"] = itos
    write_json(directory / META, meta)  # last: its presence says the directory is complete


class TokenData:
    """Train, validation and (where held out) test token streams of one text; batches are drawn reproducibly from
    (seed, index).

    Each split is either an int64 tensor on the device (batches gathered there) or, for texts too big for
    that, a uint16 memmap gathered on the CPU and copied over.
    """

    def __init__(self, meta: dict, train: torch.Tensor | np.ndarray, val: torch.Tensor | np.ndarray,
                 device: torch.device, test: torch.Tensor | np.ndarray | None = None):
        self.meta = meta
        self.name: str = meta["name"]
        self.vocab_size: int = meta["vocab_size"]
        self.tokenizer: str = meta["tokenizer"]
        self.unigram_entropy: float = meta["unigram_entropy"]
        self.device = torch.device(device)
        self.splits = {"train": train, "val": val} | ({} if test is None else {"test": test})
        self.train_tokens, self.val_tokens = len(train), len(val)
        self.test_tokens = 0 if test is None else len(test)
        self._gpt2 = None

    def batch(self, split: str, batch_size: int, block_size: int, *, seed: int,
              index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """x, y int64 (batch_size, block_size) on the device; y[:, t] is the token after x[:, t]."""
        if split not in self.splits:
            raise ValueError(f"split must be one of {', '.join(map(repr, self.splits))}, got {split!r}")
        tokens = self.splits[split]
        n = len(tokens)
        if batch_size < 1 or block_size < 1:
            raise ValueError(f"batch_size and block_size must be positive, got {batch_size} and {block_size}")
        if block_size >= n:  # a block and its next-token targets need block_size + 1 tokens
            raise ValueError(f"block_size {block_size} does not fit the {n} {split} tokens of {self.name}. "
                             f"Fix: use a block_size smaller than {n}")
        offsets = torch.randint(0, n - block_size, (batch_size,), generator=batch_generator(seed, split, index))
        if isinstance(tokens, torch.Tensor):
            positions = offsets.to(self.device)[:, None] + torch.arange(block_size, device=self.device)
            return tokens[positions], tokens[positions + 1]
        positions = (offsets[:, None] + torch.arange(block_size)).numpy()
        x, y = (torch.from_numpy(tokens[p].astype(np.int64)) for p in (positions, positions + 1))
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True), y.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def decode(self, tokens) -> str:
        ids = tokens.flatten().tolist() if isinstance(tokens, torch.Tensor) else np.ravel(tokens).tolist()
        if self.tokenizer == "char":
            itos = self.meta["itos"]
            return "".join(itos[i] for i in ids)
        if self._gpt2 is None:
            self._gpt2 = gpt2_encoding()
        return self._gpt2.decode(ids)


def batch_generator(seed: int, split: str, index: int) -> torch.Generator:
    """A CPU generator that depends on (seed, split, index) only, so any process draws the same batch."""
    state = np.random.SeedSequence([seed, SPLIT_CODES[split], index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def load_text(name: str, data_dir: str | Path, *, device, root: str | Path | None = None,
              prepare: bool = True, test_split: bool = False) -> TokenData:
    """The text's token streams, prepared first unless prepare=False; with test_split, the validation tokens' first
    half validates and their second half is the test split."""
    if prepare:
        directory = prepare_text(name, data_dir, root=root)
    else:
        directory = Path(data_dir) / name
        if not (directory / META).exists():
            raise FileNotFoundError(f"{name} is not prepared in {data_dir} (no {directory / META}). Fix: run "
                                    f"`python -m agd.jobs.prepare_text {name} --data-dir {data_dir}`")
    meta = json.loads((directory / META).read_text())
    paths = {split: directory / f"{split}.bin" for split in TOKEN_FILES}
    sizes = {split: os.path.getsize(path) for split, path in paths.items()}
    if sizes["train"] != 2 * meta["train_tokens"] or sizes["val"] != 2 * meta["val_tokens"]:
        raise RuntimeError(f"the token files in {directory} do not match its {META}. Fix: delete {directory} "
                           f"and prepare the text again")
    device = torch.device(device)
    memmaps = {split: np.memmap(path, dtype=np.uint16, mode="r") for split, path in paths.items()}
    if sum(sizes.values()) < IN_MEMORY_BYTES:
        splits = {split: torch.from_numpy(tokens.astype(np.int64)).to(device) for split, tokens in memmaps.items()}
    else:
        splits = memmaps
    if test_split:
        half = len(splits["val"]) // 2
        splits["val"], splits["test"] = splits["val"][:half], splits["val"][half:]
    return TokenData(meta, device=device, **splits)
