import sys

import pandas as pd

from agd.tables.claims import claims_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
figure = snakemake.wildcards.figure
claims = pd.read_csv(snakemake.input.claims)
claims = claims[claims["figure"] == figure]
claims_table(claims, {figure: pd.read_csv(snakemake.input.figure)}, snakemake.params.preset).to_csv(
    snakemake.output[0], index=False)
