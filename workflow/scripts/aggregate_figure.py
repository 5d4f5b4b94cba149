import sys
from pathlib import Path

from agd.tables.aggregate import figure_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
rows, tuned = figure_table(snakemake.params.members, Path(snakemake.params.runs_dir), snakemake.params.rule)
rows.to_csv(snakemake.output.rows, index=False)
tuned.to_csv(snakemake.output.tuned, index=False)
