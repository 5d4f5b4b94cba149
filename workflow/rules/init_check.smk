# The Fig. 3 grid at initialisation only (agd.plan.init_check): `snakemake --cores all results/init_check.csv`
# trains every cell for epoch 0 in results/init_runs (the train rule's bundles) and compares eta and the objective
# with the paper's.


rule init_check:
    input:
        manifests=list(INIT_JOBS),
        reference=f"{workflow.basedir}/paper/init_values.csv",
        code=module_sources("agd.tables.init_check"),
    output:
        "results/init_check.csv",
    log:
        "logs/results/init_check.log",
    params:
        runs=INIT_RUNS.to_dict("records"),
        runs_dir=lambda wildcards, input: init_check.runs_dir_of(input.manifests),
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/init_check.py"
