# One training job per run of the run table.


def train_inputs(wildcards):
    return pipeline.data_marker(RUNS.loc[wildcards.run, "dataset"], DATA_DIR)


def train_args(wildcards):
    return pipeline.train_command(RUNS.loc[wildcards.run], PRESET, config)


rule train:
    input:
        train_inputs,
    output:
        metrics=f"{RUNS_DIR}/{{run}}/metrics.csv",
        record=f"{RUNS_DIR}/{{run}}/run.json",
    log:
        f"{RUNS_DIR}/{{run}}/train.log",
    benchmark:
        f"{RUNS_DIR}/{{run}}/benchmark.tsv"
    wildcard_constraints:
        run=r"[^/]+/[^/]+/[^/]+/seed\d+",
    params:
        args=train_args,
        out=lambda wildcards: f"{RUNS_DIR}/{wildcards.run}",
    threads: PRESET.get("threads", 1)
    resources:
        gpu=lambda wildcards: int(RUNS.loc[wildcards.run, "gpus"]) if USES_CUDA else 0,
        # Used by cluster executors (profiles/slurm); a timed-out job is retried with more time and resumes.
        runtime=lambda wildcards, attempt: cluster.runtime_minutes(RUNS.loc[wildcards.run], attempt),
        mem_mb=lambda wildcards: cluster.mem_mb(RUNS.loc[wildcards.run]),
    shell:
        # agd.jobs.launch leases the job's GPUs and starts one process per GPU (torchrun) when there are several.
        "{PYTHON} -m agd.jobs.launch --gpus {resources.gpu} -- {params.args} --out {params.out:q} > {log} 2>&1"
