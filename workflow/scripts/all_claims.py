import sys

import pandas as pd

from agd.tables.claims import all_claims

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
claims = pd.read_csv(snakemake.input.claims)
checked = [pd.read_csv(path) for path in snakemake.input.figures]
all_claims(claims, checked, snakemake.params.preset).to_csv(snakemake.output[0], index=False)
