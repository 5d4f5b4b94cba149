# Tidy CSVs under results/: one per figure (with the rows each panel shows), its tuned learning rates, the run
# summary, and the numbers against the paper.


rule aggregate_figure:
    input:
        metrics=figure_metrics,
        code=module_sources("agd.tables.aggregate"),
    output:
        rows="results/{figure}.csv",
        tuned="results/tuned/{figure}.csv",
    log:
        "logs/results/{figure}.log",
    wildcard_constraints:
        figure="|".join(FIGURE_NAMES),
    params:
        members=lambda wildcards: figure_members(wildcards.figure).to_dict("records"),
        runs_dir=RUNS_DIR,
        rule=config["tuning_rule"],
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_figure.py"


rule summary:
    input:
        trained(RUNS.index),
    output:
        report("results/summary.csv", category="Results", labels={"table": "runs"}),
    log:
        "logs/results/summary.log",
    params:
        runs=RUNS.to_dict("records"),
        runs_dir=RUNS_DIR,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/summary.py"


rule tuned_table:
    input:
        expand("results/tuned/{figure}.csv", figure=FIGURE_NAMES),
    output:
        "results/tuned.csv",
    log:
        "logs/results/tuned.log",
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/tuned_table.py"


rule numbers:
    input:
        reported=f"{workflow.basedir}/paper/reported_numbers.csv",
        figures=expand("results/{figure}.csv", figure=FIGURE_NAMES),
        code=module_sources("agd.tables.numbers"),
    output:
        report("results/numbers.csv", category="Results", labels={"table": "numbers against the paper"}),
    log:
        "logs/results/numbers.log",
    params:
        preset=config["preset"],
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/numbers.py"


rule claims_of_figure:
    # One figure's claims read only that figure's table, so `snakemake figures/fig3.pdf` runs fig3's runs alone.
    input:
        claims=f"{workflow.basedir}/paper/claims.csv",
        figure="results/{figure}.csv",
        code=module_sources("agd.tables.claims"),
    output:
        "results/claims/{figure}.csv",
    log:
        "logs/results/claims/{figure}.log",
    params:
        preset=config["preset"],
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/claims.py"


rule claims:
    # Every claim of the paper: those of a figure this preset does not draw say so.
    input:
        claims=f"{workflow.basedir}/paper/claims.csv",
        figures=expand("results/claims/{figure}.csv", figure=FIGURE_NAMES),
    output:
        report("results/claims.csv", category="Results", labels={"table": "the paper's claims, checked"}),
    log:
        "logs/results/claims.log",
    params:
        preset=config["preset"],
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/all_claims.py"
