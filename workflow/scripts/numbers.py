import sys
from pathlib import Path

import pandas as pd

from agd.tables.numbers import numbers_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
figures = {Path(path).stem: pd.read_csv(path) for path in snakemake.input.figures}
reported = pd.read_csv(snakemake.input.reported)
numbers_table(reported, figures, snakemake.params.preset).to_csv(snakemake.output[0], index=False)
