import sys

import pandas as pd

from agd.tables.init_check import init_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
reference = pd.read_csv(snakemake.input.reference)
init_table(snakemake.params.runs, snakemake.params.runs_dir, reference).to_csv(snakemake.output[0], index=False)
