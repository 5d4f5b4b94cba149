import importlib

import pandas as pd

figure = snakemake.params.figure
module = importlib.import_module(f"agd.figures.{figure}")
fig = module.plot(pd.read_csv(snakemake.input.data), pd.read_csv(snakemake.input.tuned), dict(snakemake.params.context))
fig.savefig(snakemake.output.pdf)
fig.savefig(snakemake.output.png, dpi=150)
