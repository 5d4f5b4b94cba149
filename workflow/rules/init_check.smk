# The Fig. 3 grid at initialisation only (agd.plan.init_check): `snakemake --cores all results/init_check.csv`
# trains every cell for epoch 0 in results/init_runs and compares eta and the objective with the paper's.

INIT_RUNS = init_check.runs(MEMBERS, RUNS, PRESET)
INIT_BUNDLES = {name: runs for name, runs in INIT_RUNS.groupby("bundle")}


def init_bundle_runs(wildcards):
    return INIT_BUNDLES[wildcards.bundle]


rule train_init:
    input:
        lambda wildcards: pipeline.data_marker(init_bundle_runs(wildcards)["dataset"].iloc[0], DATA_DIR, SMOKE),
    output:
        f"{init_check.BUNDLES_DIR}/{{bundle}}.json",
    log:
        f"{init_check.BUNDLES_DIR}/{{bundle}}.log",
    params:
        args=lambda wildcards: pipeline.bundle_command(init_bundle_runs(wildcards), PRESET, config,
                                                       init_check.RUNS_DIR),
        devices=lambda wildcards: 1 if USES_CUDA else 0,
        lease=lease_flags(shared=True),
    threads: PRESET["threads"]
    resources:
        gpu=lambda wildcards: gpu_resource(1, shared=True),
        runtime=lambda wildcards, attempt: cluster.bundle_runtime_minutes(
            init_bundle_runs(wildcards).to_dict("records"), attempt),
        mem_mb=lambda wildcards: max(cluster.mem_mb(run) for run in init_bundle_runs(wildcards).to_dict("records")),
    shell:
        "{PYTHON} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {BUNDLE_MODULE} -- {params.args}"
        " --manifest {output:q} > {log} 2>&1"


rule init_check:
    input:
        manifests=expand(f"{init_check.BUNDLES_DIR}/{{bundle}}.json", bundle=INIT_BUNDLES),
        reference=f"{workflow.basedir}/paper/init_values.csv",
        code=module_sources("agd.tables.init_check"),
    output:
        "results/init_check.csv",
    params:
        runs=INIT_RUNS.to_dict("records"),
        runs_dir=init_check.RUNS_DIR,
    localrule: True
    script:
        "../scripts/init_check.py"
