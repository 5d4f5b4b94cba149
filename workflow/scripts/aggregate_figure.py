from pathlib import Path

from agd.tables.aggregate import figure_table

rows, tuned = figure_table(snakemake.params.members, Path(snakemake.params.runs_dir), snakemake.params.rule)
rows.to_csv(snakemake.output.rows, index=False)
tuned.to_csv(snakemake.output.tuned, index=False)
