import sys

from agd.plan.stale import set_aside

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # the rule's log, a traceback included
print("\n".join(set_aside(snakemake.params.manifest, snakemake.output[0], snakemake.params.length)))
