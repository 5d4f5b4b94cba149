"""The paper preset's training jobs replayed through the real GPU lease on fake GPUs, under Snakemake.

Every training job of the preset (its bundles, tuned evaluations and transformer runs: the shared FCN jobs and
the whole-GPU ones) becomes a job that sleeps for its estimated time (agd.plan.cluster), scaled from hours to
seconds, started by `snakemake --resources gpu=N` through `agd-gpu-lease --slots-per-gpu J [--share]` on
AGD_GPU_IDS=0..N-1, the slots counted as workflow/rules/common.smk counts them. It prints, in hours at the
paper's scale, the makespan, the idle GPU-time (a GPU running no job while the replay ran), the unused slots
(a GPU's free slots, each a 1/J of it), the hours jobs waited for the lease, and the jobs that exited 75 (no GPU
in time). Starting a job costs a fraction of a second here and hours there: the larger --seconds-per-hour, the
less that weighs. --lease replays another version of the lease tool the same way (e.g. an
older one: git show REV:src/agd/jobs/gpu_lease.py > old_lease.py), and --timeout-hours gives it a timeout.

    python benchmarks/gpu_lease_replay.py [--gpus 4] [--seconds-per-hour 0.5] [--lease FILE] [--timeout-hours H]
                                          [--json FILE]
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import agd.jobs.gpu_lease
from agd.plan import bundles, grid, lm_grid, peers, training_jobs
from agd.plan.config import validate
from agd.plan.specs import ImageRun, LMRun

REPO = Path(__file__).resolve().parents[1]
# Runs a lease tool from its file with the replay's time scale: its wait between looks shrinks with the jobs.
RUNNER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("lease", sys.argv[1])
lease = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lease)
lease.BACKOFF_SECONDS = (float(sys.argv[2]), 2 * float(sys.argv[2]))
sys.exit(lease.main(sys.argv[3:]))
"""
SNAKEFILE = """
import json
JOBS = json.load(open("jobs.json"))
SLOTS = config["slots"]
# As workflow/rules/common.smk: --resources gpu=N counts N GPUs of SLOTS job slots each.
workflow.register_resource("gpu", workflow.global_resources["gpu"].value * SLOTS)

rule all:
    input: expand("done/{job}", job=JOBS)

rule job:
    output: "done/{job}"
    resources: gpu=lambda w: 1 if JOBS[w.job]["shared"] else SLOTS * JOBS[w.job]["gpus"]
    params:
        lease=lambda w: config["lease"] + f" --count {JOBS[w.job]['gpus']} --slots-per-gpu {SLOTS}"
                        + (" --share" if JOBS[w.job]["shared"] else ""),
        seconds=lambda w: JOBS[w.job]["seconds"],
    shell:
        "date +%s.%N > log/{wildcards.job};"
        " {params.lease} -- sh -c 'echo $CUDA_VISIBLE_DEVICES $(date +%s.%N) >> log/{wildcards.job};"
        " sleep {params.seconds}; date +%s.%N >> log/{wildcards.job}' || {{ echo $? > failed/{wildcards.job}; exit 1; }};"
        " touch {output}"
"""


def paper_jobs(config: dict) -> list[dict]:
    """Every training job of the config's preset, as the workflow plans it (agd.plan.training_jobs): its name,
    GPUs, whether it takes a slot of a GPU and its estimated seconds (one start-up, then its runs one after
    another); each tuning study's chosen runs at the middle of its grid."""
    validate(config, REPO / "workflow/schemas/config.schema.yaml")
    preset = grid.preset_of(config)
    tables = [(bundles.table(grid.runs(config), grid.membership(config), preset), "results/runs", ImageRun),
              (bundles.table(lm_grid.runs(config), lm_grid.membership(config), preset, bundles.GPT),
               "results/lm_runs", LMRun)]
    jobs = {}
    for runs, runs_dir, spec in tables:
        jobs |= training_jobs.bundles(runs[runs["enabled"]], preset, config, runs_dir, "results/bundles", spec=spec)
    for study in peers.studies(preset):
        lr = study.rates[len(study.rates) // 2]
        decided = peers.decided_runs(preset["peers"], study, peers.CHOSEN, lr)
        runs_dir = "results/lm_runs" if study.job == LMRun.job else "results/runs"
        jobs[peers.decided_bundle(study, peers.CHOSEN, lr)] = training_jobs.of_runs(decided, preset, config, runs_dir,
                                                                                  "chosen")
    return [dict(name=name, gpus=job.gpus, shared=job.shared, seconds=job.seconds) for name, job in jobs.items()]


def replay(jobs: list[dict], gpus: int, slots: int, seconds_per_hour: float, lease: Path,
           timeout_hours: float | None, workdir: Path) -> dict:
    """Run the jobs under Snakemake and the lease; what each GPU did, in hours at the paper's scale."""
    scaled = {f"j{i:03d}": dict(job, seconds=round(job["seconds"] / 3600 * seconds_per_hour, 3))
              for i, job in enumerate(jobs)}
    (workdir / "jobs.json").write_text(json.dumps(scaled))
    (workdir / "Snakefile").write_text(SNAKEFILE)
    (workdir / "lease_runner.py").write_text(RUNNER)
    for folder in ("log", "failed", "done"):
        (workdir / folder).mkdir()
    poll = 0.1 * seconds_per_hour  # six minutes at the paper's scale
    command = [sys.executable, "-P", str(workdir / "lease_runner.py"), str(lease), f"{poll:.4f}"]
    if timeout_hours is not None:
        command += ["--timeout", f"{timeout_hours * seconds_per_hour:.4f}"]
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env.update(AGD_GPU_IDS=",".join(map(str, range(gpus))), AGD_GPU_LOCK_DIR=str(workdir / "locks"))
    snakemake = Path(sys.executable).with_name("snakemake")
    began = time.perf_counter()
    done = subprocess.run(
        [str(snakemake), "-s", "Snakefile", "--cores", str(16 * gpus * slots), "--resources", f"gpu={gpus}",
         "--keep-going", "--quiet", "all", "--config", f"slots={slots}", f"lease={shlex.join(command)}"],
        cwd=workdir, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - began
    runs = []  # (device, slots it held there, started, ended) per job and device
    waited = {True: 0.0, False: 0.0}  # seconds between Snakemake's start and the lease, shared and whole jobs
    for log in (workdir / "log").iterdir():
        lines = log.read_text().split("\n")
        if len(lines) < 3 or not lines[2]:
            continue
        devices, started = lines[1].split(" ")
        shared = scaled[log.name]["shared"]
        waited[shared] += float(started) - float(lines[0])
        runs += [(device, 1 if shared else slots, float(started), float(lines[2])) for device in devices.split(",")]
    if not runs:
        sys.exit(f"no job ran; snakemake said:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    first, last = min(run[2] for run in runs), max(run[3] for run in runs)
    failed = {path.name: int(path.read_text()) for path in (workdir / "failed").iterdir()}
    hours = 1 / seconds_per_hour
    return dict(jobs=len(jobs), shared=sum(job["shared"] for job in jobs),
                finished=len(list((workdir / "done").iterdir())),
                exited_75=sum(code == 75 for code in failed.values()), failed=len(failed),
                makespan_hours=(last - first) * hours, gpu_hours=gpus * (last - first) * hours,
                idle_gpu_hours=sum(last - first - busy_time([(a, b) for d, _, a, b in runs if d == str(gpu)])
                                   for gpu in range(gpus)) * hours,
                unused_slot_gpu_hours=sum(unused_capacity([r for r in runs if r[0] == str(gpu)], slots, first, last)
                                          for gpu in range(gpus)) * hours,
                whole_jobs_waiting_hours=waited[False] * hours, shared_jobs_waiting_hours=waited[True] * hours,
                wall_seconds=wall, snakemake_exit=done.returncode, snakemake_stderr=done.stderr[-3000:])


def unused_capacity(runs: list[tuple], slots: int, first: float, last: float) -> float:
    """GPU-time of one GPU's free slots from `first` to `last`, a slot counting 1/slots of the GPU."""
    events = sorted([(start, held) for _, held, start, _ in runs] + [(end, -held) for _, held, _, end in runs])
    unused, occupied, at = 0.0, 0, first
    for time_, change in events:
        unused += (time_ - at) * (slots - occupied) / slots
        occupied, at = occupied + change, time_
    return unused + (last - at) * (slots - occupied) / slots


def busy_time(spans: list[tuple[float, float]]) -> float:
    """The length of the union of the intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--seconds-per-hour", type=float, default=0.5, help="the replay's seconds per hour of job")
    parser.add_argument("--lease", type=Path, default=Path(agd.jobs.gpu_lease.__file__), help="the lease tool")
    parser.add_argument("--timeout-hours", type=float, help="the lease's --timeout, in hours at the paper's scale")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["preset"] = args.preset
    jobs = paper_jobs(config)
    preset = config["presets"][args.preset]
    slots = preset["jobs_per_gpu"]
    shared = sum(job["shared"] for job in jobs)
    print(f"{args.preset} preset: {len(jobs)} training jobs, {shared} of them taking one of a GPU's {slots} slots, "
          f"{sum(job['seconds'] for job in jobs) / 3600:.0f} job-hours; {args.gpus} fake GPUs, "
          f"{args.seconds_per_hour:g} s per hour; lease {args.lease}"
          + (f" --timeout {args.timeout_hours:g} h" if args.timeout_hours is not None else ""))
    with tempfile.TemporaryDirectory(prefix="lease-replay-") as workdir:
        result = replay(jobs, args.gpus, slots, args.seconds_per_hour, args.lease.resolve(), args.timeout_hours,
                        Path(workdir))
    print(f"finished {result['finished']} of {result['jobs']} jobs, {result['exited_75']} exited 75 "
          f"({result['failed']} failed in all); makespan {result['makespan_hours']:.1f} h of {result['gpu_hours']:.0f} "
          f"GPU-hours: idle GPU-time (no job on the GPU) {result['idle_gpu_hours']:.1f} GPU-hours, unused slots "
          f"{result['unused_slot_gpu_hours']:.1f} GPU-hours; whole-GPU jobs waited {result['whole_jobs_waiting_hours']:.1f} "
          f"h, shared jobs {result['shared_jobs_waiting_hours']:.1f} h; replay took {result['wall_seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
