# Every figure, one rule: figures/<name>.pdf, .png and a caption file from its table under results/ (which marks the
# rows each panel shows; a paper figure's claims beside it). A figure is redrawn when any module it imports changes.


rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf="figures/{figure}.pdf",
        png=report("figures/{figure}.png", caption="../report/figure.rst", category="Figures",
                   labels={"figure": "{figure}"}),
        caption="figures/{figure}.txt",
    log:
        "logs/figures/{figure}.log",
    wildcard_constraints:
        figure="|".join(ALL_FIGURES),
    params:
        context=figure_context,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/plot_figure.py"
