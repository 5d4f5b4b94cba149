# One training job per run of the run table.


def train_inputs(wildcards):
    return pipeline.data_marker(RUNS.loc[wildcards.run, "dataset"], DATA_DIR)


def train_args(wildcards):
    return pipeline.train_command(RUNS.loc[wildcards.run], PRESET, config)


# On a GPU box each job leases a free GPU itself (Snakemake only counts them); on CPU it runs as is.
LEASE = f"{PYTHON} -m agd.gpu_lease -- " if USES_CUDA else ""


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
        gpu=1 if USES_CUDA else 0,
    shell:
        "{LEASE}{PYTHON} -m agd.train {params.args} --out {params.out:q} > {log} 2>&1"
