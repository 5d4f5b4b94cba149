# Before configfile: config.yaml (and any --configfile) read strictly, so that a syntax error names its line and
# column and a key given twice is an error, not a figure or panel silently dropped. Planning imports no torch.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # agd, also when not pip-installed

from agd.plan import config_file  # noqa: E402

try:
    config_file.check(["config.yaml", *workflow.overwrite_configfiles])
except config_file.ConfigError as e:
    raise WorkflowError(str(e))
