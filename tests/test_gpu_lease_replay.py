"""The paper preset's job mix through the real lease on four fake GPUs, under `snakemake --resources gpu=4`:
shared FCN jobs pack, whole-GPU jobs wait for whole GPUs, and every job finishes; none gives up with exit 75."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPLAY = Path(__file__).parents[1] / "benchmarks" / "gpu_lease_replay.py"


@pytest.mark.slow
def test_every_job_of_the_paper_preset_finishes_on_four_fake_gpus(tmp_path):
    result_file = tmp_path / "replay.json"
    done = subprocess.run([sys.executable, str(REPLAY), "--gpus", "4", "--seconds-per-hour", "0.5",
                           "--json", str(result_file)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(result_file.read_text())
    assert result["snakemake_exit"] == 0, result["snakemake_stderr"]
    assert 0 < result["shared"] < result["jobs"]  # the paper preset: 28 shared FCN jobs of 65
    assert result["finished"] == result["jobs"]
    assert result["exited_75"] == 0 and result["failed"] == 0
    assert "idle GPU-time" in done.stdout
