# Load and validate the config, expand it into the run table, and check what must hold before any job.
# Planning imports no torch (agd.plan).
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from snakemake.common.workdir_handler import WorkdirHandler

from agd.plan import bundles, cluster, grid, init_check, lm_grid, memory, peers, smoke, workflow as pipeline  # noqa: E402
from agd.plan.config import validate  # noqa: E402

try:
    validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    SMOKE = config["smoke"]
    if SMOKE:
        for note in smoke.apply(config):
            print(f"smoke: {note}", file=sys.stderr)
        # Always its own folder, also under -d: a smoke run's rows must never be taken for, or extended into, real runs.
        workflow._workdir_handler = WorkdirHandler(Path(smoke.WORKDIR))
        workflow._workdir_handler.change_to()
    PRESET = grid.preset_of(config)
    MEMBERS = grid.membership(config)
    RUNS = bundles.table(grid.runs(config), MEMBERS, PRESET).set_index("run", drop=False)
    LM_MEMBERS = lm_grid.membership(config)
    LM_RUNS = lm_grid.runs(config).set_index("run", drop=False)
except grid.ConfigError as e:  # config.yaml problems, each named by its key
    raise WorkflowError(str(e))

# How figures and the paper name the preset: a smoke run's are never taken for real ones.
PRESET_LABEL = f"{config['preset']} ({smoke.LABEL})" if SMOKE else config["preset"]
ENABLED_RUNS = RUNS[RUNS["enabled"]]
ENABLED_LM_RUNS = LM_RUNS[LM_RUNS["enabled"]]
FIGURE_NAMES = list(PRESET["figures"])
HAS_TRANSFORMER = not LM_MEMBERS.empty
HAS_PEERS = peers.block(PRESET) is not None
PEER_FIGURES = ["peers", "profiles"] + (["sensitivity"] if HAS_PEERS and PRESET["peers"].get("sensitivity") else [])
# Every figure the preset draws: the paper's, the peers' and the transformer one (their own rules) last.
ALL_FIGURES = FIGURE_NAMES + (PEER_FIGURES if HAS_PEERS else []) + ([lm_grid.FIGURE] if HAS_TRANSFORMER else [])
RUNS_DIR = pipeline.RUNS_DIR
BUNDLES_DIR = pipeline.BUNDLES_DIR
LM_RUNS_DIR = pipeline.LM_RUNS_DIR
DATA_DIR = config["data_dir"]
USES_CUDA = PRESET["device"] == "cuda"
PYTHON = pipeline.python()
# Small jobs (FCN bundles) may share a GPU: each takes one of a GPU's jobs_per_gpu slots, a larger job all of them.
# A local run given --resources gpu=N counts the N GPUs in slots, so that Snakemake starts as many jobs as fit.
JOBS_PER_GPU = PRESET["jobs_per_gpu"] if USES_CUDA else 1
LOCAL_GPUS = workflow.global_resources["_nodes"].value is None and "gpu" in workflow.global_resources
if JOBS_PER_GPU > 1 and LOCAL_GPUS:
    workflow.register_resource("gpu", workflow.global_resources["gpu"].value * JOBS_PER_GPU)

problem = ((None if SMOKE else pipeline.imagenet_problem(config, RUNS) or pipeline.openwebtext_problem(config, LM_RUNS))
           or memory.memory_problem(MEMBERS, LM_MEMBERS, PRESET["device"]))
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


def gpu_resource(devices, shared=False):
    """What a job on `devices` GPUs (or, `shared`, on a slot of one) asks of Snakemake's gpu resource."""
    if not USES_CUDA:
        return 0
    if JOBS_PER_GPU > 1 and LOCAL_GPUS:
        return 1 if shared else devices * JOBS_PER_GPU
    return devices


def lease_flags(shared=False):
    """agd.jobs.launch's flags for how the job holds its GPUs."""
    return f"--slots-per-gpu {JOBS_PER_GPU}" + (" --share" if shared and JOBS_PER_GPU > 1 else "")


def run_exists(run, runs_dir=RUNS_DIR):
    return (Path(runs_dir) / run / "metrics.csv").exists()


def planned_runs(runs, enabled=ENABLED_RUNS, runs_dir=RUNS_DIR):
    """The runs to build on; with partial=true only those already on disk."""
    runs = [run for run in runs if run in enabled.index]
    return [run for run in runs if run_exists(run, runs_dir)] if config["partial"] else runs


def trained(runs):
    """What a rule that reads `runs` waits for: the training jobs (bundles) that hold them; with partial=true
    the metrics of those already on disk."""
    runs = planned_runs(runs)
    if config["partial"]:
        return [f"{RUNS_DIR}/{run}/metrics.csv" for run in runs]
    return [f"{BUNDLES_DIR}/{bundle}.json" for bundle in dict.fromkeys(RUNS.loc[runs, "bundle"])]


def planned_lm_runs(runs):
    return planned_runs(runs, ENABLED_LM_RUNS, LM_RUNS_DIR)


def module_sources(module):
    """The files of an agd module and of every agd module it imports: a rule's code inputs."""
    return pipeline.module_sources(module)


def figure_members(figure):
    return MEMBERS[MEMBERS["figure"] == figure]


def figure_metrics(wildcards):
    return trained(dict.fromkeys(figure_members(wildcards.figure)["run"]))
