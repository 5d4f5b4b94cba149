# The training jobs: each trains a bundle of runs in one process (agd.jobs.bundle, or agd.jobs.lm_bundle for GPT
# runs), a bundle of a run table (agd.plan.bundles), of the init check or a tuned evaluation alike. training_job says what each trains. Each run
# keeps its own directory under results/runs; the job's manifest lists how each ended.


rule train:
    input:
        unpack(training_inputs),
    output:
        "{bundles}/{bundle}.json",
    log:
        "{bundles}/{bundle}.log",
    benchmark:
        "{bundles}/{bundle}.benchmark.tsv"
    wildcard_constraints:
        bundles="|".join(BUNDLES_DIRS),
        bundle=r"[^/]+",
    params:
        python=PYTHON,
        module=lambda wildcards: training_job(wildcards).module,
        flags=lambda wildcards: training_job(wildcards).flags,
        devices=lambda wildcards: training_job(wildcards).gpus if USES_CUDA else 0,
        lease=lambda wildcards: lease_flags(training_job(wildcards).shared),
    threads: PRESET["threads"]
    priority: lambda wildcards: training_job(wildcards).priority
    resources:
        gpu=lambda wildcards: gpu_resource(training_job(wildcards).gpus, training_job(wildcards).shared),
        # Used by cluster executors (profiles/slurm); a timed-out job is retried with more time and resumes.
        runtime=lambda wildcards, attempt: training_job(wildcards).runtime(attempt),
        mem_mb=lambda wildcards: training_job(wildcards).mem_mb,
    conda:
        CONDA_ENV
    shell:
        # agd.jobs.launch leases the job's GPUs and starts one process per GPU (torchrun) when there are several.
        "{params.python} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {params.module} -- "
        "{params.flags} --manifest {output:q} > {log} 2>&1"


rule set_aside:
    # A finished training job whose runs were since deleted or changed: its damaged runs are moved aside, and the
    # record of what was found makes the job train again (agd.plan.stale).
    output:
        "{bundles}/{bundle}.set-aside-{number}.txt",
    log:
        "logs/{bundles}/{bundle}.set-aside-{number}.log",
    wildcard_constraints:
        bundles="|".join(BUNDLES_DIRS),
        bundle=r"[^/]+",
        number=r"\d+",
    params:
        manifest=manifest,
        length=lambda wildcards: training_job(wildcards).spec.length,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/set_aside.py"
