# Transformers: a GPT per text, AGD against nanoGPT's AdamW: token files, training jobs and tables (the figure
# rule draws them).


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


rule train_lm:
    input:
        lambda wildcards: pipeline.text_marker(lm_run(wildcards)["text"], DATA_DIR),
    output:
        metrics=f"{LM_RUNS_DIR}/{{lm_run}}/metrics.csv",
        record=f"{LM_RUNS_DIR}/{{lm_run}}/run.json",
    log:
        f"{LM_RUNS_DIR}/{{lm_run}}/train.log",
    benchmark:
        f"{LM_RUNS_DIR}/{{lm_run}}/benchmark.tsv"
    wildcard_constraints:
        lm_run=r"gpt-[^/]+/[^/]+/[^/]+/[^/]+/seed\d+",
    params:
        python=PYTHON,
        module=LMRun.module,
        args=lambda wildcards: pipeline.lm_train_command(lm_run(wildcards), PRESET, config),
        out=lambda wildcards, output: str(Path(output.metrics).parent),
        devices=lambda wildcards: int(lm_run(wildcards)["gpus"]) if USES_CUDA else 0,
        lease=lease_flags(),
    threads: PRESET.get("threads", 1)
    priority: lm_priority
    resources:
        gpu=lambda wildcards: gpu_resource(int(lm_run(wildcards)["gpus"])),
        runtime=lambda wildcards, attempt: cluster.lm_runtime_minutes(lm_run(wildcards), attempt, PRESET["device"]),
        mem_mb=lambda wildcards: cluster.lm_mem_mb(lm_run(wildcards)),
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {params.module} -- "
        "{params.args} --out {params.out:q} > {log} 2>&1"


rule aggregate_transformer:
    input:
        metrics=lambda wildcards: expand(
            f"{LM_RUNS_DIR}/{{run}}/metrics.csv", run=planned_lm_runs(dict.fromkeys(TRANSFORMER_MEMBERS["run"]))
        ),
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
        metrics=expand(f"{LM_RUNS_DIR}/{{run}}/metrics.csv", run=planned_lm_runs(TRANSFORMER_RUNS.index)),
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
