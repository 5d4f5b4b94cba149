import json
from pathlib import Path

from agd.tables.aggregate import lm_table

text_meta = {Path(path).parent.name: json.loads(Path(path).read_text()) for path in snakemake.input.texts}
lm_table(snakemake.params.members, Path(snakemake.params.runs_dir), text_meta).to_csv(snakemake.output[0], index=False)
