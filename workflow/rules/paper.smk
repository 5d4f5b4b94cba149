# paper/main.pdf: the LaTeX document that includes every generated figure and the numbers table.
import shutil

TEX_INSTALL = "apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended (Debian/Ubuntu)"
HAVE_TEX = shutil.which("latexmk") is not None
PAPER_TABLES = ["practical_optimisers", "theory_frameworks"]  # the paper's Tables 1 and 2, in paper/tables


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
    params:
        preset=PRESET_LABEL,
        description=PRESET.get("description", ""),
    localrule: True
    script:
        "../scripts/paper_sources.py"


rule paper:
    input:
        tex=f"{workflow.basedir}/paper/main.tex",
        generated=rules.paper_sources.output,
        figures=expand("figures/{figure}.pdf", figure=ALL_FIGURES),
    output:
        "paper/main.pdf",
    log:
        "logs/paper.log",
    localrule: True
    shell:
        # The source stays in the workflow; generated inputs and figures are found through TEXINPUTS.
        "command -v latexmk > /dev/null || "
        "{{ echo 'paper/main.pdf needs TeX, which is not installed: {TEX_INSTALL}' >&2; exit 1; }}; "
        "TEXINPUTS=paper:figures: latexmk -pdf -interaction=nonstopmode -halt-on-error "
        "-output-directory=paper {input.tex:q} > {log} 2>&1 "
        "|| {{ tail -n 30 {log} >&2; exit 1; }}"
