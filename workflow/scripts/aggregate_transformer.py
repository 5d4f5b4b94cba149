import json
import sys
from pathlib import Path

from agd.tables.aggregate import lm_table

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
text_meta = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input.texts}
lm_table(snakemake.params.members, Path(snakemake.params.runs_dir), text_meta).to_csv(snakemake.output[0], index=False)
