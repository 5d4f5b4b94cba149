import pandas as pd

from agd.tables.claims import claims_table

figure = snakemake.wildcards.figure
claims = pd.read_csv(snakemake.input.claims)
claims = claims[claims["figure"] == figure]
claims_table(claims, {figure: pd.read_csv(snakemake.input.figure)}, snakemake.params.preset).to_csv(
    snakemake.output[0], index=False)
