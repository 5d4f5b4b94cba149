import json
import sys
from pathlib import Path

from agd.io import write_json
from agd.plan.tuning import rates_of_round
from agd.tables.tuning import judge

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
study = snakemake.params.study
earlier = [json.loads(Path(path).read_text()) for path in snakemake.input.earlier]
found = judge(study, snakemake.params.peers, rates_of_round(study.rates, earlier), Path(snakemake.params.runs_dir),
              int(snakemake.wildcards.round), partial=snakemake.params.partial)
print(f"{study.name} round {found['round']}: {found['reason']}")
write_json(Path(snakemake.output[0]), found)
