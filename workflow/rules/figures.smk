# One rule per figure: figures/<name>.pdf, .png and a caption file from results/<name>.csv, which marks the rows
# each panel shows. A figure is redrawn when any module it imports changes.


def figure_notes(figure):
    panels = PRESET["figures"][figure]["panels"]
    return [f"{name}: {panel['note']}" for name, panel in panels.items() if "note" in panel]


for figure_name in FIGURE_NAMES:

    rule:
        name:
            f"figure_{figure_name}"
        input:
            data=f"results/{figure_name}.csv",
            claims=f"results/claims/{figure_name}.csv",
            code=module_sources(f"agd.figures.{figure_name}"),
        output:
            pdf=f"figures/{figure_name}.pdf",
            png=report(f"figures/{figure_name}.png", caption=f"../report/{figure_name}.rst", category="Figures",
                       labels={"figure": figure_name}),
            caption=f"figures/{figure_name}.txt",
        params:
            context={
                "figure": figure_name,
                "preset": PRESET_LABEL,
                "description": PRESET.get("description", ""),
                "notes": figure_notes(figure_name),
            },
        localrule: True
        script:
            "../scripts/plot_figure.py"
