import sys
from pathlib import Path

from agd.tables.peers import (all_members, init_table, peers_table, profiles, read_decisions, scores,
                              sensitivity_table, tuning_table)

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
decisions = read_decisions(snakemake.input.decisions)
members = all_members(snakemake.params.preset, snakemake.params.members, decisions, snakemake.params.smoke)
runs_dir = Path(snakemake.params.runs_dir)
table = peers_table(members, runs_dir, Path(snakemake.params.lm_runs_dir))
table.to_csv(snakemake.output.rows, index=False)
scored = scores(table)
scored.to_csv(snakemake.output.scores, index=False)
profiles(scored).to_csv(snakemake.output.profiles, index=False)
tuning_table(decisions).to_csv(snakemake.output.tuning, index=False)
init_table(table).to_csv(snakemake.output.init, index=False)
sensitivity_table(members, runs_dir).to_csv(snakemake.output.sensitivity, index=False)
