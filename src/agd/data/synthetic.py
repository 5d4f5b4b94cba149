"""Images of a dataset's shape made on the fly, with nothing downloaded: what the smoke run (config `smoke: true`)
trains on to prove that every run of a grid executes. Random values, so no number trained on them means anything.
(A text's stand-in is prepared like the text itself: agd.data.text.prepare_synthetic.)"""

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

