from pathlib import Path

import pandas as pd

from agd.tables.paper import escape, figures_tex, numbers_tex

captions = {Path(path).stem: Path(path).read_text() for path in snakemake.input.captions}
Path(snakemake.output.figures).write_text(figures_tex(captions))
Path(snakemake.output.numbers).write_text(numbers_tex(pd.read_csv(snakemake.input.numbers)))
Path(snakemake.output.preset).write_text(
    f"\\newcommand{{\\preset}}{{{snakemake.params.preset}}}\n"
    f"\\newcommand{{\\presetdescription}}{{{escape(snakemake.params.description)}}}\n"
)
