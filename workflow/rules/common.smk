# Load and validate the config, expand it into the run table and the training jobs, check what must hold before any
# job, and hold the functions that the rule files call. Planning imports no torch (agd.plan).
import functools
import json
import os
import shutil
import sys
from pathlib import Path

from snakemake.exceptions import IncompleteCheckpointException, WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from agd.data.catalog import TEXTS
from agd.plan import bundles, cluster, grid, init_check, lm_grid, memory, peers, smoke, stale, training_jobs
from agd.plan import workflow as pipeline
from agd.plan.config import validate
from agd.plan.specs import LMRun
from agd.plan.tuning import rates_of_round

try:
    validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    SMOKE = config["smoke"]
    if SMOKE:
        for note in smoke.apply(config):
            print(f"smoke: {note}", file=sys.stderr)
        # Always its own folder, also under -d (where Snakemake ignores the workdir directive): a smoke run's rows
        # must never be taken for, or extended into, real runs.
        Path(smoke.WORKDIR).mkdir(exist_ok=True)
        os.chdir(smoke.WORKDIR)
    PRESET = grid.preset_of(config)
    MEMBERS = grid.membership(config)
    RUNS = bundles.table(grid.runs(config), MEMBERS, PRESET).set_index("run", drop=False)
    LM_MEMBERS = lm_grid.membership(config)
    LM_RUNS = bundles.table(lm_grid.runs(config), LM_MEMBERS, PRESET, bundles.GPT).set_index("run", drop=False)
except grid.ConfigError as e:  # config.yaml problems, each named by its key
    raise WorkflowError(str(e))

# How figures and the paper name the preset: a smoke run's are never taken for real ones.
PRESET_LABEL = f"{config['preset']} ({smoke.LABEL})" if SMOKE else config["preset"]
ENABLED_RUNS = RUNS[RUNS["enabled"]]
FIGURE_NAMES = list(PRESET["figures"])
TRANSFORMER_MEMBERS = LM_MEMBERS[LM_MEMBERS["figure"] == lm_grid.FIGURE]
TRANSFORMER_RUNS = LM_RUNS.loc[list(dict.fromkeys(TRANSFORMER_MEMBERS["run"]))]
HAS_TRANSFORMER = not TRANSFORMER_MEMBERS.empty
HAS_PEERS = peers.block(PRESET) is not None
# The peers' figures, each with the output of aggregate_peers it is drawn from.
PEER_TABLES = {"peers": "rows", "profiles": "profiles"}
if HAS_PEERS and PRESET["peers"].get("sensitivity"):
    PEER_TABLES["sensitivity"] = "sensitivity"
if HAS_PEERS and peers.ablation_cells(PRESET["peers"]):
    PEER_TABLES["init_ablation"] = "init"
# Every figure the preset draws: the paper's, the peers' and the transformer one last.
ALL_FIGURES = FIGURE_NAMES + (list(PEER_TABLES) if HAS_PEERS else []) + ([lm_grid.FIGURE] if HAS_TRANSFORMER else [])
RUNS_DIR = pipeline.RUNS_DIR
BUNDLES_DIR = pipeline.BUNDLES_DIR
LM_RUNS_DIR = pipeline.LM_RUNS_DIR
DATA_DIR = config["data_dir"]
USES_CUDA = PRESET["device"] == "cuda"
# The software of every rule but the paper's (which needs the system's TeX), for --software-deployment-method conda.
# The path is relative to workflow/rules/, as a conda: path is to the file of its rule.
CONDA_ENV = "../envs/agd.yaml"
PYTHON = pipeline.python(DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method,
                         Path(workflow.basedir) / "src")
# Small jobs (FCN bundles) may share a GPU: each takes one of a GPU's jobs_per_gpu slots, a larger job all of them.
# A local run (no --jobs, which is how a cluster executor is told how many to queue) given --resources gpu=N counts
# the N GPUs in slots, so that Snakemake starts as many jobs as fit.
JOBS_PER_GPU = PRESET["jobs_per_gpu"] if USES_CUDA else 1
LOCAL_GPUS = workflow.resource_settings.nodes is None and "gpu" in workflow.global_resources
if JOBS_PER_GPU > 1 and LOCAL_GPUS:
    workflow.register_resource("gpu", workflow.global_resources["gpu"].value * JOBS_PER_GPU)

problem = ((None if SMOKE else pipeline.imagenet_problem(config, RUNS) or pipeline.openwebtext_problem(config, LM_RUNS))
           or memory.memory_problem(MEMBERS, LM_MEMBERS, PRESET["device"]))
if problem:
    raise WorkflowError(problem)

# The tuning studies of the peers block (agd.plan.peers), and every job a study may come to ask for once it has
# decided (an extension of its grid, its chosen rate's runs), by name: trained only when a decision asks.
STUDIES = {study.name: study for study in peers.studies(PRESET, smoke=SMOKE)}
DECIDED_JOBS = peers.decided_jobs(STUDIES.values())
# The training jobs (agd.jobs.bundle, agd.jobs.lm_bundle), each by the manifest it writes: the run tables' bundles
# and the init check's.
INIT_RUNS = init_check.runs(MEMBERS, RUNS, PRESET)
INIT_JOBS = training_jobs.bundles(INIT_RUNS, PRESET, config, init_check.RUNS_DIR, init_check.BUNDLES_DIR)
TRAINING_JOBS = {
    **training_jobs.bundles(RUNS, PRESET, config, RUNS_DIR, BUNDLES_DIR, MEMBERS),
    **training_jobs.bundles(LM_RUNS, PRESET, config, LM_RUNS_DIR, BUNDLES_DIR, LM_MEMBERS, LMRun),
    **INIT_JOBS,
}
BUNDLES_DIRS = (BUNDLES_DIR, init_check.BUNDLES_DIR)
PEER_MEMBERS = MEMBERS[MEMBERS["figure"].isin([peers.FIGURE, peers.SENSITIVITY])]
PEER_LM_MEMBERS = LM_MEMBERS[LM_MEMBERS["figure"] == peers.FIGURE]

HAVE_TEX = shutil.which("latexmk") is not None
TEX_INSTALL = "apt-get install latexmk texlive-latex-recommended texlive-fonts-recommended (Debian/Ubuntu)"
PAPER_TABLES = ["practical_optimisers", "theory_frameworks"]  # the paper's Tables 1 and 2, in paper/tables


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


def trained(runs, table=RUNS, runs_dir=RUNS_DIR):
    """The inputs of a table made from `runs` (of the image run table, or of LM_RUNS in LM_RUNS_DIR): the training
    jobs (bundles) that hold them; with partial=true the metrics of those already on disk."""
    runs = planned_runs(runs, table[table["enabled"]], runs_dir)
    if config["partial"]:
        return [f"{runs_dir}/{run}/metrics.csv" for run in runs]
    return [f"{BUNDLES_DIR}/{bundle}.json" for bundle in dict.fromkeys(table.loc[runs, "bundle"])]


def lm_trained(runs):
    return trained(runs, LM_RUNS, LM_RUNS_DIR)


def module_sources(module):
    """The files of an agd module and of every agd module it imports: a rule's code inputs."""
    return pipeline.module_sources(module)


def figure_members(figure):
    return MEMBERS[MEMBERS["figure"] == figure]


def figure_metrics(wildcards):
    return trained(dict.fromkeys(figure_members(wildcards.figure)["run"]))


def manifest(wildcards):
    return f"{wildcards.bundles}/{wildcards.bundle}.json"


def training_job(wildcards):
    """What the training job that writes this manifest trains: the one place the training rule learns a bundle's
    runs from, the run table's or a job a tuning study asks for once it has decided."""
    path = manifest(wildcards)
    if path in TRAINING_JOBS:
        return TRAINING_JOBS[path]
    if wildcards.bundles == BUNDLES_DIR and wildcards.bundle in DECIDED_JOBS:
        return decided_job(wildcards.bundle)
    raise WorkflowError(f"{path}: no training job of this config writes it; ask for a figure or table, which names "
                        "the bundles it needs")


@functools.cache
def decided_job(name):
    study, kind, lr = DECIDED_JOBS[name]
    return training_jobs.of_runs(peers.decided_runs(PRESET["peers"], study, kind, lr), PRESET, config,
                                 study_runs_dir(study), "extension" if kind == peers.GRID else "chosen")


def study_runs_dir(study):
    return LM_RUNS_DIR if study.job == LMRun.job else RUNS_DIR


def training_inputs(wildcards):
    """Its data and its set-aside records: a new one where its runs were deleted or changed since it ended
    (agd.plan.stale), so that it trains them again."""
    job = training_job(wildcards)
    data = (pipeline.text_marker(job.data, DATA_DIR) if job.spec is LMRun
            else pipeline.data_marker(job.data, DATA_DIR, SMOKE))
    return {"data": data, "set_aside": stale.records(manifest(wildcards), job.spec.length)}


# --- the tuning stage: a checkpoint per study and round (agd.tables.tuning) ---

def tuning_round(study, number):
    return f"results/tuning/{study}/round{number}.json"


def decision(study, number):
    """Round `number`'s decision of a study, once its checkpoint has run (Snakemake runs it first)."""
    return json.loads(Path(checkpoints.tune.get(study=study, round=number).output[0]).read_text())


def decided_runs_input(study, kind, lr):
    """What a table or round reads of a decided job's runs: its manifest, or with partial=true the metrics of its
    runs already on disk."""
    if config["partial"]:
        runs_dir = study_runs_dir(STUDIES[study])
        specs = peers.decided_runs(PRESET["peers"], STUDIES[study], kind, lr)
        return [f"{runs_dir}/{run.run_id()}/metrics.csv" for run in specs if run_exists(run.run_id(), runs_dir)]
    return [f"{BUNDLES_DIR}/{peers.decided_bundle(STUDIES[study], kind, lr)}.json"]


def grid_inputs(study, lr):
    if lr in STUDIES[study].rates:
        run = STUDIES[study].grid_run(PRESET["peers"], lr).run_id()
        return lm_trained([run]) if STUDIES[study].job == LMRun.job else trained([run])
    return decided_runs_input(study, peers.GRID, lr)


def tuning_round_inputs(wildcards):
    """Round k of a study reads its grid so far (the initial rates and each extension rounds 0..k-1 asked for)
    and the decisions of those rounds."""
    if wildcards.study not in STUDIES:
        raise WorkflowError(f"results/tuning/{wildcards.study}: no tuning study of this config has that name; "
                            f"its studies are {', '.join(STUDIES) or 'none'}")
    number = int(wildcards.round)
    earlier = [decision(wildcards.study, k) for k in range(number)]
    if earlier and earlier[-1]["extend"] is None:
        raise WorkflowError(f"{tuning_round(wildcards.study, number)}: the study decided in round {number - 1}; "
                            "it has no later round")
    rates = rates_of_round(STUDIES[wildcards.study].rates, earlier)
    return {"earlier": [tuning_round(wildcards.study, k) for k in range(number)],
            "runs": [path for lr in rates for path in grid_inputs(wildcards.study, lr)]}


def final_decision(study):
    """A study's rounds, judged one after another until one chooses a rate: (their files, the last decision)."""
    number, found = 0, decision(study, 0)
    while found["extend"] is not None:
        number += 1
        found = decision(study, number)
    return [tuning_round(study, k) for k in range(number + 1)], found


def peers_inputs(wildcards):
    """Every run of the peers block: those known before any study decides, and for each study its rounds and
    its chosen rate's runs."""
    inputs = {"runs": trained(dict.fromkeys(PEER_MEMBERS["run"])) + lm_trained(dict.fromkeys(PEER_LM_MEMBERS["run"])),
              "decisions": []}
    for study in STUDIES:
        try:
            rounds, found = final_decision(study)
        except IncompleteCheckpointException as e:
            # Its next round, judged alongside every other study's; this job is planned again once it is.
            inputs["decisions"].append(e.targetfile)
            continue
        inputs["decisions"] += rounds
        inputs["runs"] += decided_runs_input(study, peers.CHOSEN, found["chosen"])
    return inputs


def lm_text_markers(wildcards):
    return [pipeline.text_marker(text, DATA_DIR) for text in sorted(set(TRANSFORMER_RUNS.loc[
        TRANSFORMER_RUNS["enabled"], "text"]))]


def lm_runs_dir(wildcards, input):
    return pipeline.runs_dir(input.metrics, LM_RUNS.index, LM_RUNS_DIR)


def preset_context():
    """How a figure or the paper names the preset it was made from."""
    return {"preset": PRESET_LABEL, "description": PRESET.get("description", "")}


def figure_inputs(wildcards):
    """A figure's table (a paper figure's with its claims) and the code of its module."""
    figure = wildcards.figure
    if figure in FIGURE_NAMES:
        tables = {"data": rules.aggregate_figure.output.rows, "claims": rules.claims_of_figure.output[0]}
    elif figure == lm_grid.FIGURE:
        tables = {"data": rules.aggregate_transformer.output[0]}
    else:
        tables = {"data": getattr(rules.aggregate_peers.output, PEER_TABLES[figure])}
    return {name: path.format(figure=figure) for name, path in tables.items()} | {
        "code": module_sources(f"agd.figures.{figure}")}


def figure_context(wildcards):
    figure = wildcards.figure
    return {"figure": figure, **preset_context(), "notes": pipeline.figure_notes(config, PRESET, figure)}
