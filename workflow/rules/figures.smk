# One rule per figure: figures/<name>.pdf and .png from results/<name>.csv and its tuned rates.
for figure_name in FIGURE_NAMES:

    rule:
        name:
            f"figure_{figure_name}"
        input:
            data=f"results/{figure_name}.csv",
            tuned=f"results/tuned/{figure_name}.csv",
            code=f"{workflow.basedir}/src/agd/figures/{figure_name}.py",  # editing a figure's module redraws that figure only
        output:
            pdf=f"figures/{figure_name}.pdf",
            png=f"figures/{figure_name}.png",
        params:
            figure=figure_name,
            context={"figure": figure_name, "preset": config["preset"],
                     "description": PRESET.get("description", "")},
        localrule: True
        script:
            "../scripts/plot_figure.py"
