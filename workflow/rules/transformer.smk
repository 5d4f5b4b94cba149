# Transformers: a GPT per text, AGD against nanoGPT's AdamW: token files and tables (the train rule trains the
# runs, in bundles of agd.jobs.lm_bundle; the figure rule draws them).


rule prepare_text:
    output:
        f"{DATA_DIR}/{{text}}/meta.json",
    wildcard_constraints:
        text="|".join(TEXTS),
    log:
        "logs/prepare_{text}.log",
    params:
        python=PYTHON,
        data_dir=lambda wildcards, output: str(Path(output[0]).parents[1]),
        root=lambda wildcards: "--synthetic" if SMOKE else pipeline.text_root_flag(wildcards.text, config),
    localrule: True  # downloads run on the submitting host, which has the network
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m agd.jobs.prepare_text {wildcards.text} --data-dir {params.data_dir:q} {params.root} "
        "> {log} 2>&1"


rule aggregate_transformer:
    input:
        metrics=lm_trained(dict.fromkeys(TRANSFORMER_MEMBERS["run"])),
        texts=lm_text_markers,
    output:
        "results/transformer.csv",
    log:
        "logs/results/transformer.log",
    params:
        members=TRANSFORMER_MEMBERS.to_dict("records"),
        runs_dir=lm_runs_dir,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_transformer.py"


rule transformer_summary:
    input:
        metrics=lm_trained(TRANSFORMER_RUNS.index),
    output:
        report("results/transformer_summary.csv", category="Results", labels={"table": "transformer runs"}),
    log:
        "logs/results/transformer_summary.log",
    params:
        runs=TRANSFORMER_RUNS.to_dict("records"),
        runs_dir=lm_runs_dir,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/transformer_summary.py"
