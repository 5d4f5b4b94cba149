# Transformers: a GPT per text, AGD against nanoGPT's AdamW; token files, training jobs, table and figure.
from agd.data.catalog import TEXTS
from agd.plan.specs import LMRun

LM_MODULE = LMRun.module


rule prepare_text:
    output:
        f"{DATA_DIR}/{{text}}/meta.json",
    wildcard_constraints:
        text="|".join(TEXTS),
    params:
        root=lambda wildcards: "--synthetic" if SMOKE else pipeline.text_root_flag(wildcards.text, config),
    log:
        "logs/prepare_{text}.log",
    localrule: True  # downloads run on the submitting host, which has the network
    shell:
        "{PYTHON} -m agd.jobs.prepare_text {wildcards.text} --data-dir {DATA_DIR:q} {params.root} > {log} 2>&1"


def lm_run(wildcards):
    return LM_RUNS.loc[wildcards.lm_run]


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
        args=lambda wildcards: pipeline.lm_train_command(lm_run(wildcards), PRESET, config),
        out=lambda wildcards: f"{LM_RUNS_DIR}/{wildcards.lm_run}",
        devices=lambda wildcards: int(lm_run(wildcards)["gpus"]) if USES_CUDA else 0,
        lease=lease_flags(),
    threads: PRESET.get("threads", 1)
    resources:
        gpu=lambda wildcards: gpu_resource(int(lm_run(wildcards)["gpus"])),
        runtime=lambda wildcards, attempt: cluster.lm_runtime_minutes(lm_run(wildcards), attempt, PRESET["device"]),
        mem_mb=lambda wildcards: cluster.lm_mem_mb(lm_run(wildcards)),
    shell:
        "{PYTHON} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {LM_MODULE} -- {params.args}"
        " --out {params.out:q} > {log} 2>&1"


def transformer_texts():
    return sorted(set(ENABLED_LM_RUNS["text"]))


rule aggregate_transformer:
    input:
        metrics=lambda wildcards: expand(
            f"{LM_RUNS_DIR}/{{run}}/metrics.csv", run=planned_lm_runs(dict.fromkeys(LM_MEMBERS["run"]))
        ),
        texts=lambda wildcards: [pipeline.text_marker(text, DATA_DIR) for text in transformer_texts()],
    output:
        "results/transformer.csv",
    params:
        members=LM_MEMBERS.to_dict("records"),
        runs_dir=LM_RUNS_DIR,
    localrule: True
    script:
        "../scripts/aggregate_transformer.py"


rule transformer_summary:
    input:
        expand(f"{LM_RUNS_DIR}/{{run}}/metrics.csv", run=planned_lm_runs(LM_RUNS.index)),
    output:
        report("results/transformer_summary.csv", category="Results", labels={"table": "transformer runs"}),
    params:
        runs=LM_RUNS.to_dict("records"),
        runs_dir=LM_RUNS_DIR,
    localrule: True
    script:
        "../scripts/transformer_summary.py"


rule figure_transformer:
    input:
        data="results/transformer.csv",
        code=module_sources("agd.figures.transformer"),
    output:
        pdf="figures/transformer.pdf",
        png=report("figures/transformer.png", caption="../report/transformer.rst", category="Figures",
                   labels={"figure": "transformer"}),
        caption="figures/transformer.txt",
    params:
        context={
            "figure": "transformer",
            "preset": PRESET_LABEL,
            "description": PRESET.get("description", ""),
            "notes": [f"{name}: {panel['note']}" for name, panel in lm_grid.transformer_panels(config).items()
                      if "note" in panel],
        },
    localrule: True
    script:
        "../scripts/plot_figure.py"
