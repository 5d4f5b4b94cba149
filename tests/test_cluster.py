"""SLURM time and memory requests of the training jobs, and the checks made before submitting any."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from agd.plan import cluster, grid
from agd.plan.cluster import FLOOR_MINUTES

REPO = Path(__file__).parents[1]
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


def run(**changes) -> dict:
    base = dict(arch="fcn", dataset="cifar10", epochs=2000, batch_size=128, width=512, depth=16, log_steps=0)
    return {**base, **changes}


def paper_runs() -> list[dict]:
    """The runs of the paper's figures (the peers block's runs are shorter)."""
    config = {**CONFIG, "preset": "paper"}
    members = grid.membership(config)
    runs = grid.runs(config)
    of_the_paper = set(members[members["figure"].isin(grid.FIGURES)]["run"])
    return runs[runs["enabled"] & runs["run"].isin(of_the_paper)].to_dict("records")


def test_paper_runs_get_hours_in_line_with_the_compute_estimates():
    # paper_spec §7.2 (one H100): ResNet-18 2.5-4.5 h, VGG-16 2-3 h, FCN 0.5-1.5 h; limits hold about twice that.
    bounds = {"resnet18": (4.5, 12), "vgg16": (3, 8), "fcn": (1, 4)}
    for r in paper_runs():
        low, high = bounds[r["arch"]]
        assert low <= cluster.runtime_minutes(r) / 60 <= high, r["run"]


def test_small_batches_cost_more_per_epoch_than_large_ones():
    """Fig. 4 runs 5e5 steps: batch 32 takes 320 epochs, batch 4096 takes 38462, and neither is free."""
    small, large = run(depth=4, batch_size=32, epochs=320), run(depth=4, batch_size=4096, epochs=38462)
    assert cluster.epoch_seconds(small) > 10 * cluster.epoch_seconds(large)
    assert 60 <= cluster.runtime_minutes(small) <= 6 * 60 and 60 <= cluster.runtime_minutes(large) <= 6 * 60


def test_runtime_grows_with_size_epochs_and_attempt():
    base = cluster.runtime_minutes(run())
    assert cluster.runtime_minutes(run(depth=32, width=2048)) > base
    assert cluster.runtime_minutes(run(epochs=4000)) > base
    assert cluster.runtime_minutes(run(), attempt=2) == 2 * base
    assert cluster.runtime_minutes(run(arch="resnet18", width=64)) > base


def test_quick_runs_get_the_floor_and_small_memory():
    quick = grid.runs({**CONFIG, "preset": "quick"})
    quick = quick[quick["enabled"]].to_dict("records")
    minutes = [cluster.runtime_minutes(r) for r in quick]
    assert min(minutes) == FLOOR_MINUTES and max(minutes) <= 2 * FLOOR_MINUTES
    assert {cluster.mem_mb(r) for r in quick} == {2_000}


def test_data_parallel_runs_ask_for_less_time_and_more_memory():
    imagenet = run(arch="resnet50", dataset="imagenet", epochs=350, batch_size=1024, width=64)
    eight_gpus = {**imagenet, "gpus": 8}
    assert cluster.runtime_minutes(eight_gpus) < cluster.runtime_minutes(imagenet) / 6
    assert cluster.mem_mb(eight_gpus) == 8 * cluster.mem_mb(imagenet)


def test_imagenet_asks_for_days_and_more_memory():
    imagenet = run(arch="resnet50", dataset="imagenet", epochs=350, batch_size=1024, width=64)
    assert cluster.runtime_minutes(imagenet) > 48 * 60
    assert cluster.mem_mb(imagenet) > cluster.mem_mb(run())


# --- checks before the first submission ---

SLURM = SimpleNamespace(executor_plugin=SimpleNamespace(name="slurm"))
LOCAL = SimpleNamespace(executor_plugin=SimpleNamespace(name="local"))
GPU_NODES = "(null)\ngpu:a100:4(S:0-1)\n"
CPU_NODES = "(null)\n"


def profile_resources(**train) -> dict:
    """A paper-preset train job's resources (one GPU) as the slurm profile sets them, with changes."""
    profile = yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text())
    return {"train": {"gpu": 1, **profile["default-resources"], **profile["set-resources"]["train"], **train}}


def test_profiles_are_identical_under_both_file_names():
    for name in ("slurm", "local"):
        folder = REPO / "profiles" / name
        assert (folder / "profile.yaml").read_text() == (folder / "config.yaml").read_text()


def test_placeholders_left_in_the_profile_say_what_to_edit():
    problem = cluster.slurm_problem(SLURM, profile_resources(), sinfo_gres=GPU_NODES)
    assert "'<your-account>'" in problem and "'<your-gpu-partition>'" in problem
    assert "profiles/slurm/profile.yaml" in problem and "slurm_account" in problem


def test_a_filled_in_profile_on_a_gpu_cluster_passes():
    resources = profile_resources(slurm_account="lab42", slurm_partition="gpu")
    assert cluster.slurm_problem(SLURM, resources, sinfo_gres=GPU_NODES) is None


@pytest.mark.parametrize("request_", [{"gpu": 1}, {"gpu": 0, "gres": "gpu:1"}])
def test_gpu_request_on_a_cluster_without_gpus_says_how_to_run_on_cpus(request_):
    resources = profile_resources(slurm_account="lab42", slurm_partition="debug", **request_)
    problem = cluster.slurm_problem(SLURM, resources, sinfo_gres=CPU_NODES)
    assert "no GPUs" in problem and "preset=quick" in problem and "train:gpu=0" in problem


def test_cpu_jobs_on_a_cluster_without_gpus_pass():
    resources = {"train": {"slurm_partition": "debug", "gpu": 0}}
    assert cluster.slurm_problem(SLURM, resources, sinfo_gres=CPU_NODES) is None


def test_other_executors_are_not_checked():
    assert cluster.slurm_problem(LOCAL, profile_resources(), sinfo_gres=CPU_NODES) is None


def test_the_workflow_stops_on_placeholders_before_submitting_anything(tmp_path):
    config = {**CONFIG, "preset": "quick"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--profile", str(REPO / "profiles/slurm"), "results/fig4.csv"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    assert "'<your-account>'" in result.stderr and "profiles/slurm/profile.yaml" in result.stderr
    assert not (tmp_path / ".snakemake/slurm_logs").exists() and not (tmp_path / "results").exists()
