import sys

import pandas as pd

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True).to_csv(snakemake.output[0], index=False)
