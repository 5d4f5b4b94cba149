# Load and validate the config, expand it into the run table, and check what must hold before any job.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # agd, also when not pip-installed

from agd import cluster, grid, pipeline  # noqa: E402

try:
    PRESET = grid.preset_of(config)
    MEMBERS = grid.membership(config)
    RUNS = grid.runs(config).set_index("run", drop=False)
except grid.ConfigError as e:
    raise WorkflowError(str(e))

ENABLED_RUNS = RUNS[RUNS["enabled"]]
FIGURE_NAMES = list(PRESET["figures"])
RUNS_DIR = pipeline.RUNS_DIR
DATA_DIR = config["data_dir"]
USES_CUDA = PRESET["device"] == "cuda"
PYTHON = pipeline.python()

problem = pipeline.imagenet_problem(config, RUNS)
if problem:
    raise WorkflowError(problem)


onstart:
    # Before the first job, not on a dry run; cluster jobs run where the GPUs are.
    if workflow.executor_plugin.common_settings.local_exec:
        problem = pipeline.cuda_problem(config["preset"], PRESET)
    else:
        problem = cluster.slurm_problem(workflow, cluster.submitted_resources(workflow))
    if problem:
        sys.exit(f"Error: {problem}")


def run_exists(run):
    return (Path(RUNS_DIR) / run / "metrics.csv").exists()


def planned_runs(runs):
    """The runs to build on; with partial=true only those already on disk."""
    runs = [run for run in runs if run in ENABLED_RUNS.index]
    return [run for run in runs if run_exists(run)] if config["partial"] else runs


def figure_members(figure):
    return MEMBERS[MEMBERS["figure"] == figure]


def figure_metrics(wildcards):
    runs = planned_runs(dict.fromkeys(figure_members(wildcards.figure)["run"]))
    return expand(f"{RUNS_DIR}/{{run}}/metrics.csv", run=runs)
