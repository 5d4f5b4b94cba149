"""Part of the quick preset submitted through profiles/slurm to a real SLURM cluster (ci/slurm_up.sh starts one).

Its training jobs must each run as a SLURM job and give the same numbers as a local run of the same config.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).parents[1]
TARGET = "results/fig4.csv"
UP = ("idle", "mixed", "allocated", "completing")


def cluster_state() -> str | None:
    """Why the SLURM tests cannot run here, or None when a node takes jobs."""
    if shutil.which("sinfo") is None:
        return "sinfo is not on PATH (no SLURM client; bring a cluster up with ci/slurm_up.sh)"
    try:
        result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "sinfo got no answer from slurmctld in 30 s; run ci/slurm_up.sh"
    states = result.stdout.split()
    if result.returncode != 0 or not any(state.rstrip("*~#").startswith(UP) for state in states):
        said = (result.stdout + result.stderr).strip() or "nothing"
        return f"no SLURM node takes jobs (sinfo: {said}); run ci/slurm_up.sh"
    return None


def require_cluster():
    reason = cluster_state()
    if reason and os.environ.get("AGD_REQUIRE_SLURM") == "1":
        pytest.fail(f"AGD_REQUIRE_SLURM=1 but {reason}")
    if reason:
        pytest.skip(reason)


def fig4_only(preset: str = "quick") -> dict:
    """A preset with Fig. 4 alone, less its longest (batch 4096) run: three small AGD runs on quick."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["preset"] = preset
    fig4 = config["presets"][preset]["figures"]["fig4"]
    fig4["panels"]["batch_size"]["batch_size"] = [32, 128, 1024]
    config["presets"][preset]["figures"] = {"fig4": fig4}
    return config


def small_showcase() -> dict:
    """The quick preset's showcase figure, its learning-rate sweep cut to one rate per baseline: six runs."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["preset"] = "quick"
    showcase = config["presets"]["quick"]["figures"]["showcase"]
    showcase["panels"]["fcn"]["epochs"] = 3
    sweep = showcase["panels"]["resnet18_lr_sweep"]
    sweep["optimizers"] = {"agd": None, "adam": [1.0e-3], "sgd": [0.1]}
    sweep["epochs"] = 1
    config["presets"]["quick"]["figures"] = {"showcase": showcase}
    return config


def snakemake(workdir: Path, *args: str, config: dict | None = None, target: str = TARGET) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config or fig4_only(), sort_keys=False))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), target, *args],
        capture_output=True, text=True, timeout=1200,
    )


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


# The cluster of ci/slurm_up.sh has one partition and no accounts. Given on the command line, resources
# replace the profile's default-resources and set-resources blocks whole, placeholders included.
NO_ACCOUNT = ("--default-resources", "slurm_partition=debug")


def without_time(path: Path) -> pd.DataFrame:
    return pd.read_csv(path).drop(columns="time_s")


def submitted_train_jobs(log: str) -> dict[str, str]:
    """SLURM job id -> job output file of each train job, from the plugin's 'submitted with SLURM jobid' lines."""
    return dict(re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S*/rule_train/\S+)\)", log))


def slurm_states(job_ids) -> dict[str, str]:
    # Without accounting, squeue keeps finished jobs for MinJobAge seconds (ci/slurm_up.sh: a day).
    result = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i %T"],
                            capture_output=True, text=True, check=True)
    return dict(line.split() for line in result.stdout.splitlines())


SHOWCASE = "figures/showcase.pdf"


@pytest.mark.slow
def test_quick_showcase_through_the_slurm_profile_matches_a_local_run(tmp_path):
    require_cluster()
    local = tmp_path / "local"
    succeeded(snakemake(local, "--cores", "2", config=small_showcase(), target=SHOWCASE))

    on_slurm = tmp_path / "slurm"
    result = succeeded(snakemake(
        on_slurm, "--profile", str(REPO / "profiles/slurm"), *NO_ACCOUNT,
        "--set-resources", "train:slurm_partition=debug", "train:gpu=0",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
        "--slurm-keep-successful-logs", config=small_showcase(), target=SHOWCASE,
    ))
    assert (on_slurm / SHOWCASE).stat().st_size > 0

    run_dirs = sorted(p.parent for p in (local / "results/runs").rglob("metrics.csv"))
    assert len(run_dirs) == 6  # FCN: AGD, Adam, SGD; ResNet-18: AGD, Adam, SGD
    # Each training job (a bundle of runs) ran as a SLURM job, and each run inside exactly one of them: the
    # job's output (written by slurmd) names its runs.
    jobs = submitted_train_jobs(result.stdout + result.stderr)
    bundles = list((on_slurm / "results/bundles").glob("*.json"))
    assert len(jobs) == len(bundles) == 2, result.stderr[-4000:]  # the FCN runs, the ResNet-18 runs
    assert set(slurm_states(jobs).values()) == {"COMPLETED"}
    job_output = {job_id: Path(log).read_text() for job_id, log in jobs.items()}
    for run_dir in run_dirs:
        run = run_dir.relative_to(local).as_posix()
        assert sum(f"--member {run} " in text for text in job_output.values()) == 1, run

    table = "results/showcase.csv"
    pd.testing.assert_frame_equal(without_time(on_slurm / table), without_time(local / table), check_exact=True)
    for run_dir in run_dirs:
        mirror = on_slurm / run_dir.relative_to(local)
        pd.testing.assert_frame_equal(without_time(mirror / "metrics.csv"), without_time(run_dir / "metrics.csv"),
                                      check_exact=True)


def test_gpu_runs_on_a_cluster_without_gpus_stop_before_any_submission(tmp_path):
    require_cluster()
    gres = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True).stdout
    if "gpu" in gres:
        pytest.skip("this cluster has GPUs")
    # The paper preset asks for a GPU per run.
    result = snakemake(tmp_path, "--profile", str(REPO / "profiles/slurm"), *NO_ACCOUNT,
                       "--set-resources", "train:slurm_partition=debug", config=fig4_only("paper"))
    assert result.returncode != 0
    assert "no GPUs" in result.stderr and "train:gpu=0" in result.stderr
    assert not (tmp_path / ".snakemake/slurm_logs").exists()
