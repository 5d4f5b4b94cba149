import sys
from pathlib import Path

from agd.tables.peers import peers_table, profiles, scores, sensitivity_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
table = peers_table(snakemake.params.members, snakemake.params.evaluations, Path(snakemake.params.runs_dir),
                    Path(snakemake.params.bundles_dir))
table.to_csv(snakemake.output.rows, index=False)
scored = scores(table)
scored.to_csv(snakemake.output.scores, index=False)
profiles(scored).to_csv(snakemake.output.profiles, index=False)
sensitivity_table(snakemake.params.members, Path(snakemake.params.runs_dir)).to_csv(snakemake.output.sensitivity,
                                                                                     index=False)
