"""Images of a dataset's shape made on the fly, with nothing downloaded: what the smoke run (config `smoke: true`)
trains on to prove that every run of a grid executes. Random values, so no number trained on them means anything.
(A text's stand-in is prepared like the text itself: agd.data.text.prepare_synthetic.) And a made-up English text
with the structure of a tiny grammar, which a small GPT learns within a few hundred steps (tests, the GPU check)."""

import random

import torch

from agd.data.catalog import DatasetInfo, dataset_info
from agd.data.tensors import DeviceDataset

SEED = 0
STEPS = 2  # training steps per epoch of synthetic images


def synthetic_images(name: str, *, pad_to: int | None, batch_size: int, device: torch.device,
                     steps: int = STEPS, validation: bool = False) -> DeviceDataset:
    """`steps` training batches and one test batch of `name`'s input shape and classes (standard normal pixels,
    uniform labels), on `device`; with `validation`, one validation batch too."""
    shape = dataset_info(name, pad_to)
    generator = torch.Generator().manual_seed(SEED)
    n_train, n_test = batch_size * steps, batch_size

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n, *shape.input_shape, generator=generator)
        y = torch.randint(shape.num_classes, (n,), generator=generator)
        return x.to(device), y.to(device)

    info = DatasetInfo(name, shape.num_classes, shape.input_shape, n_train, n_test)
    train, test = split(n_train), split(n_test)
    val = dict(zip(("val_x", "val_y"), split(batch_size))) if validation else {}
    return DeviceDataset(info, *train, *test, **val)



def made_up_text(chars: int = 40_000, seed: int = 0) -> str:
    """Sentences from a tiny grammar: enough structure for a model to beat the unigram entropy."""
    rng = random.Random(seed)
    sentences = []
    while sum(map(len, sentences)) < chars:
        words = [rng.choice(("the", "a")), rng.choice(("big", "red", "")), rng.choice(("cat", "dog", "house")),
                 rng.choice(("sat on", "ran to", "saw")), "the", rng.choice(("mat", "house", "dog"))]
        sentences.append(" ".join(w for w in words if w).capitalize() + ".\n")
    return "".join(sentences)
