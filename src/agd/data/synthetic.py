"""Data of a dataset's or a text's shape made on the fly, with nothing downloaded: what the smoke run (config
`smoke: true`) trains on to prove that every run of a grid executes. Random values, so no number trained on
them means anything."""

from pathlib import Path

import numpy as np
import torch

from agd.data.catalog import DatasetInfo, dataset_info
from agd.data.tensors import DeviceDataset

SEED = 0
STEPS = 2  # training steps per epoch of synthetic images
# The vocabularies of the texts: the character sets of the char-level texts are at most this large.
TEXT_VOCABULARY = {"shakespeare_char": 65, "python_docs_char": 128, "openwebtext": 50257}
TEXT_TOKENS = 1 << 16


def synthetic_images(name: str, *, pad_to: int | None, batch_size: int, device: torch.device,
                     steps: int = STEPS) -> DeviceDataset:
    """`steps` training batches and one test batch of `name`'s input shape and classes (standard normal pixels,
    uniform labels), on `device`."""
    shape = dataset_info(name, pad_to)
    generator = torch.Generator().manual_seed(SEED)
    n_train, n_test = batch_size * steps, batch_size

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, *shape.input_shape, generator=generator)
        y = torch.randint(shape.num_classes, (n,), generator=generator)
        return x.to(device), y.to(device)

    info = DatasetInfo(name, shape.num_classes, shape.input_shape, n_train, n_test)
    return DeviceDataset(info, *split(n_train), *split(n_test))


def write_synthetic_text(name: str, directory: Path) -> None:
    """train.bin, val.bin and meta.json of `name`'s vocabulary in `directory`, as the text's preparer writes
    them (uint16 tokens; meta.json last), from uniform random tokens."""
    from agd.data.text import write_meta, write_tokens

    vocab = TEXT_VOCABULARY[name]
    rng = np.random.default_rng(SEED)
    train, val = (rng.integers(0, vocab, TEXT_TOKENS, dtype=np.uint16) for _ in range(2))
    write_tokens(directory / "train.bin", [train])
    write_tokens(directory / "val.bin", [val])
    itos = [chr(32 + i) for i in range(vocab)] if name.endswith("_char") else None
    write_meta(directory, name=name, tokenizer="char" if itos else "gpt2", vocab_size=vocab,
               train_tokens=len(train), val=val, source=f"synthetic: {TEXT_TOKENS} uniform tokens (smoke run)",
               itos=itos)
