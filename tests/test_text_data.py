"""Token datasets of the language-model runs: preparation, files on disk, reproducible batches, CLI."""

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import urllib.error
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from agd.jobs import prepare_text as prepare_text_cli
from agd.data import text as text_module
from agd.data.text import GPT2_VOCAB_SIZE, SHAKESPEARE_URL, load_text, prepare_text

WORDS = ("thou", "art", "the", "king", "of", "night", "and", "my", "love", "doth", "fly", "o", "sweet", "death",
         "what", "light", "through", "yonder", "window", "breaks", "fair", "Verona", "ROMEO", "JULIET")


def made_up_verse(n_lines: int = 600, seed: int = 0) -> str:
    """A few kB of random verse: no long substring repeats, so a window locates its offset."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7)))
        lines.append(words.capitalize() + rng.choice(",.;:!?"))
    return "\n".join(lines) + "\n"


def direct_entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(c / len(text) * math.log(c / len(text)) for c in counts.values())


@pytest.fixture
def verse() -> str:
    return made_up_verse()


@pytest.fixture
def fake_fetch(monkeypatch, verse):
    calls = []

    def fetch(url, dest):
        calls.append(url)
        Path(dest).write_text(verse, encoding="utf-8")

    monkeypatch.setattr(text_module, "fetch", fetch)
    return calls


def check_char_text(directory: Path, text: str, source: str) -> None:
    meta = json.loads((directory / "meta.json").read_text())
    vocab = sorted(set(text))
    split = int(len(text) * 0.9)
    assert meta["itos"] == vocab and meta["vocab_size"] == len(vocab) and meta["tokenizer"] == "char"
    assert meta["train_tokens"] == split and meta["val_tokens"] == len(text) - split
    assert meta["source"] == source
    train = np.fromfile(directory / "train.bin", dtype=np.uint16)
    val = np.fromfile(directory / "val.bin", dtype=np.uint16)
    assert os.path.getsize(directory / "train.bin") == 2 * split  # uint16 on disk
    assert "".join(vocab[t] for t in train) == text[:split]
    assert "".join(vocab[t] for t in val) == text[split:]
    assert meta["unigram_entropy"] == pytest.approx(direct_entropy(text[split:]), rel=1e-12)


def test_shakespeare_from_download(tmp_path, verse, fake_fetch):
    directory = prepare_text("shakespeare_char", tmp_path)
    assert directory == tmp_path / "shakespeare_char"
    assert fake_fetch == [SHAKESPEARE_URL]
    check_char_text(directory, verse, SHAKESPEARE_URL)

    data = load_text("shakespeare_char", tmp_path, device="cpu")
    split = int(len(verse) * 0.9)
    assert (data.train_tokens, data.val_tokens) == (split, len(verse) - split)
    assert data.vocab_size == len(set(verse)) and data.tokenizer == "char"
    assert data.decode(data.splits["val"]) == verse[split:]
    assert data.unigram_entropy == pytest.approx(direct_entropy(verse[split:]))


@pytest.mark.parametrize("as_directory", [False, True])
def test_shakespeare_from_root(tmp_path, monkeypatch, as_directory):
    monkeypatch.setattr(text_module, "fetch", lambda url, dest: pytest.fail("root given, yet fetch was called"))
    verse = made_up_verse(seed=1)
    source = tmp_path / "copy" / "input.txt"
    source.parent.mkdir()
    source.write_text(verse, encoding="utf-8")
    root = source.parent if as_directory else source
    directory = prepare_text("shakespeare_char", tmp_path / "data", root=root)
    check_char_text(directory, verse, str(source))


def test_missing_root_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="root="):
        prepare_text("shakespeare_char", tmp_path, root=tmp_path / "nowhere.txt")


def test_failed_download_says_url_and_root(tmp_path, monkeypatch):
    def offline(url, dest):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(text_module, "fetch", offline)
    with pytest.raises(RuntimeError) as error:
        prepare_text("shakespeare_char", tmp_path)
    assert SHAKESPEARE_URL in str(error.value) and "root" in str(error.value)
    assert not (tmp_path / "shakespeare_char" / "meta.json").exists()


def test_prepare_is_idempotent(tmp_path, monkeypatch, fake_fetch):
    first = prepare_text("shakespeare_char", tmp_path)
    meta = (first / "meta.json").read_text()
    monkeypatch.setattr(text_module, "fetch", lambda url, dest: pytest.fail("prepared text fetched again"))
    assert prepare_text("shakespeare_char", tmp_path) == first
    assert (first / "meta.json").read_text() == meta


def test_concurrent_prepares_download_once(tmp_path, monkeypatch, verse):
    calls = []

    def slow_fetch(url, dest):
        calls.append(url)
        time.sleep(0.3)
        Path(dest).write_text(verse, encoding="utf-8")

    monkeypatch.setattr(text_module, "fetch", slow_fetch)
    write_char_text = text_module.write_char_text
    writes = []
    monkeypatch.setattr(text_module, "write_char_text", lambda *args: writes.append(1) or write_char_text(*args))
    threads = [threading.Thread(target=prepare_text, args=("shakespeare_char", tmp_path)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == len(writes) == 1
    check_char_text(tmp_path / "shakespeare_char", verse, SHAKESPEARE_URL)


def test_python_docs_offline(tmp_path):
    data = load_text("python_docs_char", tmp_path, device="cpu")
    assert 80 <= data.vocab_size <= 200
    assert data.train_tokens > 300_000
    assert 2.5 < data.unigram_entropy < 4.5
    assert data.meta["source"] == "pydoc_data.topics"
    assert "Python" in data.decode(data.splits["train"][:20_000])
    with pytest.raises(ValueError, match="root"):
        prepare_text("python_docs_char", tmp_path / "other", root=tmp_path)


def test_unknown_text(tmp_path):
    with pytest.raises(ValueError, match="shakespeare_char"):
        prepare_text("war_and_peace", tmp_path)


def test_load_unprepared_without_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m agd.jobs.prepare_text shakespeare_char"):
        load_text("shakespeare_char", tmp_path, device="cpu", prepare=False)


@pytest.fixture
def shakespeare(tmp_path, fake_fetch):
    return load_text("shakespeare_char", tmp_path, device="cpu")


def window_offsets(data, split: str, x: torch.Tensor, y: torch.Tensor) -> list[int]:
    """Where each row's window starts in the split's text (unique in the made-up verse)."""
    text = data.decode(data.splits[split])
    offsets = []
    for row_x, row_y in zip(x, y):
        window = data.decode(row_x) + data.decode(row_y[-1:])
        offsets.append(text.find(window))
        assert offsets[-1] >= 0 and text.find(window, offsets[-1] + 1) == -1
    return offsets


def test_batch_shapes_and_targets(shakespeare):
    for split in ("train", "val"):
        x, y = shakespeare.batch(split, 8, 32, seed=0, index=0)
        assert x.shape == y.shape == (8, 32) and x.dtype == y.dtype == torch.int64
        assert torch.equal(x[:, 1:], y[:, :-1])
        tokens = shakespeare.splits[split]
        for row_x, row_y, offset in zip(x, y, window_offsets(shakespeare, split, x, y)):
            assert torch.equal(row_x, tokens[offset:offset + 32])
            assert torch.equal(row_y, tokens[offset + 1:offset + 33])


def test_batches_are_reproducible(shakespeare, tmp_path, verse):
    x, y = shakespeare.batch("train", 8, 32, seed=3, index=7)
    again = shakespeare.batch("train", 8, 32, seed=3, index=7)
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])
    # A fresh load (as after a restart) draws the same batch.
    reloaded = load_text("shakespeare_char", tmp_path, device="cpu", prepare=False)
    assert torch.equal(x, reloaded.batch("train", 8, 32, seed=3, index=7)[0])
    assert not torch.equal(x, shakespeare.batch("train", 8, 32, seed=3, index=8)[0])
    assert not torch.equal(x, shakespeare.batch("train", 8, 32, seed=4, index=7)[0])


def test_train_and_val_draw_from_different_streams(shakespeare):
    tokens = shakespeare.splits["val"]
    same_tokens = text_module.TokenData(shakespeare.meta, tokens, tokens, torch.device("cpu"))
    train = same_tokens.batch("train", 16, 32, seed=0, index=0)
    val = same_tokens.batch("val", 16, 32, seed=0, index=0)
    assert not torch.equal(train[0], val[0])
    # Each split still draws from its own tokens.
    window_offsets(shakespeare, "val", *shakespeare.batch("val", 16, 32, seed=0, index=0))
    window_offsets(shakespeare, "train", *shakespeare.batch("train", 16, 32, seed=0, index=0))


def test_batch_errors(shakespeare):
    with pytest.raises(ValueError, match="split"):
        shakespeare.batch("test", 4, 8, seed=0, index=0)
    n = shakespeare.val_tokens
    with pytest.raises(ValueError, match="smaller") as error:
        shakespeare.batch("val", 4, n, seed=0, index=0)
    assert f"block_size {n} " in str(error.value) and f" {n} val tokens" in str(error.value)
    x, y = shakespeare.batch("val", 4, n - 1, seed=0, index=0)  # the longest block that fits: one window
    assert torch.equal(x[:, 1:], y[:, :-1]) and (x[:, 0] == x[0, 0]).all()


def test_memmap_path_matches_memory(tmp_path, monkeypatch, fake_fetch):
    in_memory = load_text("shakespeare_char", tmp_path, device="cpu")
    monkeypatch.setattr(text_module, "IN_MEMORY_BYTES", 0)
    mapped = load_text("shakespeare_char", tmp_path, device="cpu")
    assert isinstance(mapped.splits["train"], np.memmap) and isinstance(in_memory.splits["train"], torch.Tensor)
    for split in ("train", "val"):
        for index in range(3):
            a = in_memory.batch(split, 8, 16, seed=1, index=index)
            b = mapped.batch(split, 8, 16, seed=1, index=index)
            assert b[0].dtype == torch.int64 and b[0].device.type == "cpu"
            assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert mapped.decode(mapped.splits["val"][:50]) == in_memory.decode(in_memory.splits["val"][:50])


def write_gpt2_bins(root: Path, n_train: int = 20_000, n_val: int = 3_000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    train = rng.integers(0, GPT2_VOCAB_SIZE, n_train).astype(np.uint16)
    val = rng.integers(0, GPT2_VOCAB_SIZE, n_val).astype(np.uint16)
    train.tofile(root / "train.bin")
    val.tofile(root / "val.bin")
    return train, val


def test_openwebtext_from_prepared_bins(tmp_path):
    root = tmp_path / "nanogpt" / "openwebtext"
    train, val = write_gpt2_bins(root)
    data = load_text("openwebtext", tmp_path / "data", device="cpu", root=root)
    assert (data.vocab_size, data.tokenizer) == (GPT2_VOCAB_SIZE, "gpt2")
    assert (data.train_tokens, data.val_tokens) == (len(train), len(val))
    for split in ("train.bin", "val.bin"):
        linked = tmp_path / "data" / "openwebtext" / split
        assert linked.is_symlink() or os.stat(linked).st_ino == os.stat(root / split).st_ino
    counts = np.bincount(val, minlength=GPT2_VOCAB_SIZE) / len(val)
    assert data.unigram_entropy == pytest.approx(-sum(p * math.log(p) for p in counts if p > 0))
    x, y = data.batch("train", 4, 64, seed=0, index=0)
    assert x.shape == (4, 64) and int(x.max()) < GPT2_VOCAB_SIZE and torch.equal(x[:, 1:], y[:, :-1])


def test_openwebtext_rejects_non_gpt2_tokens(tmp_path):
    root = tmp_path / "bins"
    root.mkdir()
    np.arange(100, dtype=np.uint16).tofile(root / "train.bin")
    np.full(10, 60_000, dtype=np.uint16).tofile(root / "val.bin")
    with pytest.raises(RuntimeError, match="50257"):
        prepare_text("openwebtext", tmp_path / "data", root=root)


def write_documents(root: Path) -> list[str]:
    root.mkdir()
    documents = [made_up_verse(40, seed) for seed in range(12)]
    for i, document in enumerate(documents):
        (root / f"doc{i:02d}.txt").write_text(document, encoding="utf-8")
    return documents


def test_openwebtext_documents_need_tiktoken(tmp_path, monkeypatch):
    write_documents(tmp_path / "docs")
    monkeypatch.setitem(sys.modules, "tiktoken", None)  # import tiktoken now raises ImportError
    with pytest.raises(RuntimeError, match="pip install tiktoken"):
        prepare_text("openwebtext", tmp_path / "data", root=tmp_path / "docs")
    assert not (tmp_path / "data" / "openwebtext" / "meta.json").exists()


def gpt2_encoding_or_skip():
    if importlib.util.find_spec("tiktoken") is None:
        pytest.skip("tiktoken is not installed")
    try:
        return text_module.gpt2_encoding()
    except RuntimeError as error:  # the BPE ranks are not cached and there is no network
        pytest.skip(str(error))


def test_openwebtext_documents_tokenized(tmp_path):
    encoding = gpt2_encoding_or_skip()
    documents = write_documents(tmp_path / "docs")
    data = load_text("openwebtext", tmp_path / "data", device="cpu", root=tmp_path / "docs")
    expected_val = encoding.encode_ordinary(documents[-1]) + [50256]  # 12 documents: the last one validates
    assert data.splits["val"].tolist() == expected_val
    assert data.decode(data.splits["val"][:-1]) == documents[-1]
    assert data.train_tokens == sum(len(encoding.encode_ordinary(d)) + 1 for d in documents[:-1])


def test_openwebtext_download_needs_packages(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    with pytest.raises(RuntimeError, match="pip install tiktoken datasets"):
        prepare_text("openwebtext", tmp_path)


def test_openwebtext_root_without_text(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.bin"):
        prepare_text("openwebtext", tmp_path / "data", root=tmp_path)


def test_cli(tmp_path, capsys):
    result = subprocess.run([sys.executable, "-m", "agd.jobs.prepare_text", "python_docs_char", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("python_docs_char: vocabulary ") and "unigram entropy" in result.stdout
    assert (tmp_path / "python_docs_char" / "meta.json").exists()

    with pytest.raises(SystemExit) as unknown:
        prepare_text_cli.main(["war_and_peace", "--data-dir", str(tmp_path)])
    assert unknown.value.code == 2
    capsys.readouterr()
    assert prepare_text_cli.main(["shakespeare_char", "--data-dir", str(tmp_path),
                                  "--root", str(tmp_path / "missing.txt")]) == 1
    assert capsys.readouterr().err.startswith("prepare_text: no tiny shakespeare text at ")


def test_synthetic_text_has_the_texts_vocabulary_and_loads_as_a_prepared_one(tmp_path):
    """The smoke run's stand-in for a text: prepared by prepare_text --synthetic, read as the real one is."""
    assert prepare_text_cli.main(["openwebtext", "--data-dir", str(tmp_path), "--synthetic"]) == 0
    data = load_text("openwebtext", tmp_path, device="cpu", prepare=False)
    assert data.vocab_size == GPT2_VOCAB_SIZE == 50257
    x, y = data.batch("train", 2, 1024, seed=0, index=0)
    assert x.shape == (2, 1024) and int(x.max()) < data.vocab_size
    assert 0.9 * math.log(data.vocab_size) < data.unigram_entropy <= math.log(data.vocab_size)  # near uniform


def test_a_text_with_more_characters_than_token_ids_is_refused_whole(tmp_path, capsys):
    """uint16 token files hold 65,536 ids: a text of more distinct characters would wrap them into others."""
    characters = [chr(c) for c in range(0x4E00, 0x4E00 + 70_000) if not 0xD800 <= c < 0xE000]
    source = tmp_path / "input.txt"
    source.write_text("".join(characters) * 2, encoding="utf-8")
    with pytest.raises(RuntimeError, match=f"{len(characters):,} distinct characters, more than the 65,536 token ids"):
        prepare_text("shakespeare_char", tmp_path / "data", root=source)
    assert not (tmp_path / "data" / "shakespeare_char" / "meta.json").exists()
    from agd.jobs import train_lm

    code = train_lm.main(["--text", "shakespeare_char", "--text-root", str(source), "--data-dir",
                          str(tmp_path / "data"), "--n-layer", "1", "--n-head", "1", "--n-embd", "8", "--block-size", "8", "--max-iters", "1",
                          "--device", "cpu", "--out", str(tmp_path / "run")])
    assert code == 2 and "distinct characters" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
