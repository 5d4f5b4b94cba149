import pandas as pd

from agd.aggregate import select_tuned

figure = pd.read_csv(snakemake.input[0])
select_tuned(figure, snakemake.params.rule).to_csv(snakemake.output[0], index=False)
