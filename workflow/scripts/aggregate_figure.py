from pathlib import Path

from agd.aggregate import figure_table

figure_table(snakemake.params.members, Path(snakemake.params.runs_dir)).to_csv(snakemake.output[0], index=False)
