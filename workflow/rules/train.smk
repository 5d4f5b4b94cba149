# Training jobs: one per bundle of runs (agd.plan.bundles), which trains them in one process (agd.jobs.bundle).
# Each run keeps its own directory under results/runs; the job's manifest lists how each ended.

from agd.plan.specs import BUNDLE_MODULE

BUNDLE_RUNS = {name: runs for name, runs in RUNS.groupby("bundle")}


def bundle_runs(wildcards):
    return BUNDLE_RUNS[wildcards.bundle]


def shared_gpu(wildcards):
    """FCN bundles on one GPU share it with other jobs (jobs_per_gpu); conv nets and data-parallel runs do not."""
    return bundles.shares_gpu(bundle_runs(wildcards).to_dict("records"))


def train_inputs(wildcards):
    return pipeline.data_marker(bundle_runs(wildcards)["dataset"].iloc[0], DATA_DIR, SMOKE)


rule train:
    input:
        train_inputs,
    output:
        f"{BUNDLES_DIR}/{{bundle}}.json",
    log:
        f"{BUNDLES_DIR}/{{bundle}}.log",
    benchmark:
        f"{BUNDLES_DIR}/{{bundle}}.benchmark.tsv"
    wildcard_constraints:
        bundle=r"(?!tuned-)[^/]+",
    params:
        args=lambda wildcards: pipeline.bundle_command(bundle_runs(wildcards), PRESET, config),
        devices=lambda wildcards: int(bundle_runs(wildcards)["gpus"].max()) if USES_CUDA else 0,
        lease=lambda wildcards: lease_flags(shared_gpu(wildcards)),
    threads: PRESET["threads"]
    resources:
        gpu=lambda wildcards: gpu_resource(int(bundle_runs(wildcards)["gpus"].max()), shared_gpu(wildcards)),
        # Used by cluster executors (profiles/slurm); a timed-out job is retried with more time and resumes.
        runtime=lambda wildcards, attempt: cluster.bundle_runtime_minutes(
            bundle_runs(wildcards).to_dict("records"), attempt),
        mem_mb=lambda wildcards: max(cluster.mem_mb(run) for run in bundle_runs(wildcards).to_dict("records")),
    shell:
        # agd.jobs.launch leases the job's GPUs and starts one process per GPU (torchrun) when there are several.
        "{PYTHON} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {BUNDLE_MODULE} -- {params.args}"
        " --manifest {output:q} > {log} 2>&1"
