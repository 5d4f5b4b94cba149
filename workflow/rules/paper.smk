# paper/main.pdf: the LaTeX document that includes every generated figure and the numbers table.


rule paper_sources:
    input:
        captions=expand("figures/{figure}.txt", figure=ALL_FIGURES),
        numbers="results/numbers.csv",
        claims="results/claims.csv",
        tables=expand(f"{workflow.basedir}/paper/tables/{{table}}.csv", table=PAPER_TABLES),
        table_captions=f"{workflow.basedir}/paper/tables/captions.csv",
        peers=["results/peers_scores.csv"] if HAS_PEERS else [],
        code=module_sources("agd.tables.paper"),
    output:
        figures="paper/generated/figures.tex",
        numbers="paper/generated/numbers.tex",
        claims="paper/generated/claims.tex",
        tables="paper/generated/tables.tex",
        preset="paper/generated/preset.tex",
        peers="paper/generated/peers.tex",
    log:
        "logs/paper/generated.log",
    params:
        context=preset_context(),
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/paper_sources.py"


rule paper:
    # No conda environment: TeX comes from the system (the README says how to install it).
    input:
        tex=f"{workflow.basedir}/paper/main.tex",
        generated=rules.paper_sources.output,
        figures=expand("figures/{figure}.pdf", figure=ALL_FIGURES),
    output:
        "paper/main.pdf",
    log:
        "logs/paper/main.log",
    params:
        install=TEX_INSTALL,
    localrule: True
    shell:
        # The source stays in the workflow; generated inputs and figures are found through TEXINPUTS.
        "command -v latexmk > /dev/null || "
        "{{ echo 'paper/main.pdf needs TeX, which is not installed: {params.install}' | tee {log} >&2; exit 1; }}; "
        "TEXINPUTS=paper:figures: latexmk -pdf -interaction=nonstopmode -halt-on-error "
        "-output-directory=paper {input.tex:q} > {log} 2>&1 "
        "|| {{ tail -n 30 {log} >&2; exit 1; }}"
