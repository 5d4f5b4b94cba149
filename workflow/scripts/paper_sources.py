import sys
from pathlib import Path

import pandas as pd

from agd.optim import registry
from agd.tables.paper import claims_tex, escape, figures_tex, numbers_tex, peers_tex, qualitative_table_tex

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
captions = {Path(path).stem: Path(path).read_text() for path in snakemake.input.captions}
Path(snakemake.output.figures).write_text(figures_tex(captions))
Path(snakemake.output.numbers).write_text(numbers_tex(pd.read_csv(snakemake.input.numbers)))
Path(snakemake.output.claims).write_text(claims_tex(pd.read_csv(snakemake.input.claims)))
table_captions = pd.read_csv(snakemake.input.table_captions).set_index("table")["caption"]
Path(snakemake.output.tables).write_text("\n".join(
    qualitative_table_tex(pd.read_csv(path, dtype=str), table_captions[Path(path).stem])
    for path in snakemake.input.tables))
Path(snakemake.output.preset).write_text(
    f"\\newcommand{{\\preset}}{{{escape(snakemake.params.context['preset'])}}}\n"
    f"\\newcommand{{\\presetdescription}}{{{escape(snakemake.params.context['description'])}}}\n"
)
peers = snakemake.input.peers if "peers" in snakemake.input.keys() else []
peers = [peers] if isinstance(peers, str) else list(peers)
scores = pd.read_csv(peers[0]) if peers else pd.DataFrame()
labels = {entry.name: entry.label for entry in registry.REGISTRY.values()}
Path(snakemake.output.peers).write_text(peers_tex(scores, labels))
