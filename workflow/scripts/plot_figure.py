import importlib
import sys

import pandas as pd

from agd.figures.style import caption

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
context = dict(snakemake.params.context)
module = importlib.import_module(f"agd.figures.{context['figure']}")
data = pd.read_csv(snakemake.input.data)
fig = module.plot(data, context)
fig.savefig(snakemake.output.pdf)
fig.savefig(snakemake.output.png, dpi=200)
claims = pd.read_csv(snakemake.input.claims) if "claims" in snakemake.input.keys() else None
with open(snakemake.output.caption, "w") as f:
    f.write(caption(module.TITLE, data, context, claims))
