import pandas as pd

pd.concat([pd.read_csv(path) for path in snakemake.input], ignore_index=True).to_csv(snakemake.output[0], index=False)
