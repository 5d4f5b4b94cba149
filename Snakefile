# AGD reproduction: config.yaml -> run table -> one training job per run -> tidy CSVs -> figures.
# snakemake -n                                  plan the paper grid
# snakemake --cores all --resources gpu=4       run it on a 4-GPU box
# snakemake --cores all --config preset=quick   every figure on the CPU in minutes
# snakemake --cores all figures/fig3.pdf        one figure and only its runs
# snakemake --cores all figures/transformer.pdf GPT with AGD vs AdamW
# snakemake --cores all results/init_check.csv  the Fig. 3 grid at init only, against the paper
# snakemake --report report.html                every figure with its caption, and the run summary

include: "workflow/rules/read_config.smk"


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/init_check.smk"
include: "workflow/rules/peers.smk"
include: "workflow/rules/transformer.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    localrule: True
    input:
        expand("figures/{figure}.{ext}", figure=ALL_FIGURES, ext=("pdf", "png")),
        "results/summary.csv",
        ["results/transformer_summary.csv"] if HAS_TRANSFORMER else [],
        "results/tuned.csv",
        "results/numbers.csv",
        "results/claims.csv",
        ["results/peers_scores.csv"] if HAS_PEERS else [],
        # Without TeX the rest still builds; `snakemake paper/main.pdf` then says how to install it.
        ["paper/main.pdf"] if HAVE_TEX else [],
