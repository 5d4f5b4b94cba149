# Load and validate the config, expand it into the run table, and check what must hold before any job.
# Planning imports no torch (agd.plan).
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # agd, also when not pip-installed

from agd.plan import cluster, grid, lm_grid, workflow as pipeline  # noqa: E402
from agd.plan.config import validate  # noqa: E402

try:
    validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    PRESET = grid.preset_of(config)
    MEMBERS = grid.membership(config)
    RUNS = grid.runs(config).set_index("run", drop=False)
    LM_MEMBERS = lm_grid.membership(config)
    LM_RUNS = lm_grid.runs(config).set_index("run", drop=False)
except grid.ConfigError as e:
    raise WorkflowError(str(e))

ENABLED_RUNS = RUNS[RUNS["enabled"]]
ENABLED_LM_RUNS = LM_RUNS[LM_RUNS["enabled"]]
FIGURE_NAMES = list(PRESET["figures"])
HAS_TRANSFORMER = not LM_MEMBERS.empty
# Every figure the preset draws, the transformer one (its own rules) last.
ALL_FIGURES = FIGURE_NAMES + ([lm_grid.FIGURE] if HAS_TRANSFORMER else [])
RUNS_DIR = pipeline.RUNS_DIR
LM_RUNS_DIR = pipeline.LM_RUNS_DIR
DATA_DIR = config["data_dir"]
USES_CUDA = PRESET["device"] == "cuda"
PYTHON = pipeline.python()

problem = pipeline.imagenet_problem(config, RUNS) or pipeline.openwebtext_problem(config, LM_RUNS)
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


def run_exists(run, runs_dir=RUNS_DIR):
    return (Path(runs_dir) / run / "metrics.csv").exists()


def planned_runs(runs, enabled=ENABLED_RUNS, runs_dir=RUNS_DIR):
    """The runs to build on; with partial=true only those already on disk."""
    runs = [run for run in runs if run in enabled.index]
    return [run for run in runs if run_exists(run, runs_dir)] if config["partial"] else runs


def planned_lm_runs(runs):
    return planned_runs(runs, ENABLED_LM_RUNS, LM_RUNS_DIR)


def module_sources(module):
    """The files of an agd module and of every agd module it imports: a rule's code inputs."""
    return pipeline.module_sources(module)


def figure_members(figure):
    return MEMBERS[MEMBERS["figure"] == figure]


def figure_metrics(wildcards):
    runs = planned_runs(dict.fromkeys(figure_members(wildcards.figure)["run"]))
    return expand(f"{RUNS_DIR}/{{run}}/metrics.csv", run=runs)
