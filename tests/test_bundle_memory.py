"""Stacked cohorts and memory: the memory a run adds to a stacked step is counted (activations at its batch size
included), a cohort that would not fit is split before it starts, and one that runs out of memory anyway is
taken up again in smaller cohorts from its checkpoints, every run ending as if nothing had happened."""

import pandas as pd
import pytest
import torch
from test_bundle import metrics, run_bundle

from agd.jobs import memory
from agd.jobs.train import Cohort
from agd.losses import build_loss
from agd.models.build import build_model
from agd.plan.specs import ImageRun

STACKED = {"agd": "--optimizer agd", "agd-seed2": "--optimizer agd --seed 2", "adam": "--optimizer adam --lr 1e-3",
           "sgd-seed1": "--optimizer sgd --lr 0.1 --seed 1"}


@pytest.mark.parametrize("spec, shape", [
    (ImageRun(arch="fcn", dataset="mnist5k", depth=4, width=48, batch_size=8), (1, 28, 28)),
    (ImageRun(arch="resnet18", dataset="mnist5k", width=4, batch_size=8), (1, 32, 32)),
])
def test_the_activations_counted_on_the_meta_device_are_those_a_real_step_keeps(spec, shape):
    """The meta-device count against the storages autograd really saves on the CPU, for 8 images less 7."""

    def saved(batch: int) -> int:
        storages = {}

        def pack(tensor):
            storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
            return tensor

        torch.manual_seed(0)
        model = build_model(spec.arch, input_shape=shape, num_classes=10, depth=spec.depth, width=spec.width)
        x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            build_loss(spec.loss, 10)(model(x), y)
        return sum(storages.values())

    assert memory.activation_bytes_per_image(spec, shape, 10) == saved(8) - saved(7)


@pytest.mark.parametrize("runs, run_bytes, budget, sizes", [
    (8, 10, 1000, [8]), (8, 10, 30, [3, 3, 2]), (8, 10, 5, [1] * 8), (5, 10, 40, [3, 2]), (1, 10, 0, [1]),
])
def test_runs_are_split_into_as_few_and_as_even_cohorts_as_fit(runs, run_bytes, budget, sizes):
    assert memory.cohort_sizes(runs, run_bytes, budget) == sizes


def test_a_stacked_cohort_too_large_for_the_memory_is_split_before_it_starts(tmp_path, monkeypatch, capsys):
    spec = ImageRun(arch="fcn", dataset="mnist5k", depth=3, width=32)
    run_bytes = memory.stacked_run_bytes(spec, (1, 28, 28), 10)
    monkeypatch.setattr(memory, "job_budget", lambda device: int(2.5 * run_bytes))  # room for two runs
    sizes = []
    real_run = Cohort.run
    monkeypatch.setattr(Cohort, "run", lambda self, *a: sizes.append(len(self.members)) or real_run(self, *a))
    assert run_bundle(tmp_path / "split", STACKED, "--stack", "yes") == 0
    assert sizes == [2, 2]
    assert "4 runs of one shape need" in capsys.readouterr().err


@pytest.mark.slow
def test_an_out_of_memory_error_in_a_stacked_step_loses_no_run(tmp_path, monkeypatch, capsys):
    assert run_bundle(tmp_path / "uninterrupted", STACKED, "--stack", "yes") == 0
    real_step = Cohort.train_step
    injected = []

    def train_step(self, pairs):
        if len(self.members) == 4 and self.members[0].global_step == 45 and not injected:  # epoch 2 of 40 steps
            injected.append(True)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real_step(self, pairs)

    monkeypatch.setattr(Cohort, "train_step", train_step)
    assert run_bundle(tmp_path / "oom", STACKED, "--stack", "yes") == 0
    assert injected
    said = capsys.readouterr().err
    assert "4 runs stacked ran out of memory: CUDA out of memory. Tried to allocate 2.00 GiB (injected)" in said
    assert "they go on from their checkpoints in cohorts of 2 and 2" in said
    for name in STACKED:
        assert "its cohort ran out of memory and was split" in (tmp_path / "oom" / name / "train.log").read_text()
        pd.testing.assert_frame_equal(metrics(tmp_path / "oom" / name), metrics(tmp_path / "uninterrupted" / name),
                                      check_exact=True)
