import sys
from pathlib import Path

import pandas as pd

from agd.tables.aggregate import lm_summary_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
runs = pd.DataFrame(snakemake.params.runs)
lm_summary_table(runs, Path(snakemake.params.runs_dir)).to_csv(snakemake.output[0], index=False)
