"""Beyond the paper: AGD against the learning-rate-free optimizers of today and Muon, by the protocol of the
optimizer-benchmarking literature (DeepOBS, AlgoPerf), planned from a preset's `peers` block.

- Every image cell holds out a validation split of its training set (agd.data.catalog.VALIDATION_SIZE, or the
  cell's `val_size`); every choice reads it, and the test split is only reported. A GPT cell (one with a `text`)
  holds out the second half of its text's validation tokens as its test split (LMRun's `test_split`) and chooses
  on the first half by validation loss (`LM_RULE`).
- An optimizer runs on the cells of the jobs it has a builder for (agd.optim.registry): Adam and SGD on the image
  cells, nanoGPT's AdamW on the GPT cells, AGD (its transformer variant on a GPT) and the peers on both.
- Every optimizer without a rate grid (AGD, the learning-rate-free peers, the self-tuning Schedule-Free) runs
  once per evaluation seed at its defaults (role `evaluation`).
- Every tuned optimizer has a study per cell (`Study`): its grid on the tuning seed (role `tuning`) is judged by
  the block's validation rule; a best rate at an edge of the grid adds the next decade on that side, a round at
  a time, until the best is inside or the bounds are reached (agd.plan.tuning.decide). The chosen rate then
  runs on the evaluation seeds. Which runs those are is known only once the study has decided: the workflow's
  tuning stage (a Snakemake checkpoint per study and round) judges each round (agd.tables.tuning) and asks for
  the jobs of `decided_jobs`: an extension of the grid, then the chosen rate's runs.
- The init ablation: on the cells it names, every optimizer also runs from the other init (AGD from PyTorch's
  default, every other optimizer from AGD's orthogonal init, the very weights AGD starts from), on the
  evaluation seeds, a tuned one at the rate its study chose (role `ablation`).
- The sensitivity study (figure `sensitivity`) runs every untuned optimizer's scale knob over `decades` decades
  either side of its default on one cell and the tuning seed; a tuned optimizer's sweep is its study's grid.
"""

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import pandas as pd

from agd.data.catalog import TEXTS, VALIDATION_SIZE
from agd.optim import registry
from agd.plan.errors import ConfigError
from agd.plan.specs import ImageRun, LMRun, RunSpec, lr_tag
from agd.plan.table import member
from agd.plan.tuning import BOUNDS, VALIDATION_RULES, decade

FIGURE, SENSITIVITY = "peers", "sensitivity"
TUNING, EVALUATION, ABLATION = "tuning", "evaluation", "ablation"
DEFAULT_RULE = "final_val_acc"


@dataclass(frozen=True)
class Judging:
    """How a cell of a job is judged: `reference`, the tuned optimizer whose median best validation `metric` over
    the evaluation seeds is the cell's target; `sign`, +1 where higher is better and -1 for a loss; time to the
    target counted in `time_unit`s."""

    reference: str
    metric: str
    sign: float
    time_unit: str


JUDGING = {registry.IMAGE: Judging("adam", "val_acc", 1.0, "epoch"),
           registry.LM: Judging("adamw", "val_loss", -1.0, "iteration")}  # nanoGPT's own optimizer, tuned
LM_RULE = f"final_{JUDGING[registry.LM].metric}"  # a GPT cell's studies: the validation loss at the end of the run


def block(preset: Mapping) -> dict | None:
    return preset.get(FIGURE)


def rule_of(peers: Mapping) -> str:
    return peers.get("tuning", {}).get("rule", DEFAULT_RULE)


def bounds_of(peers: Mapping) -> tuple[float, float]:
    return tuple(peers.get("tuning", {}).get("bounds", BOUNDS))


def job_of(cell: Mapping) -> str:
    """The job that trains a cell's runs: a GPT cell names a text."""
    return registry.LM if "text" in cell else registry.IMAGE


def applies(optimizer: str, cell: Mapping) -> bool:
    """The optimizer has a builder for the cell's job (agd.optim.registry)."""
    return job_of(cell) in registry.get(optimizer).builders


def length_of(cell: Mapping) -> int:
    """How long each run of a cell trains: its epochs, or a GPT cell's iterations."""
    return cell["max_iters"] if job_of(cell) == registry.LM else cell["epochs"]


def cell_rule(peers: Mapping, cell: Mapping) -> str:
    return LM_RULE if job_of(cell) == registry.LM else rule_of(peers)


def cell_run(cell: Mapping, optimizer: str, seed: int, **settings) -> RunSpec:
    """One run of a cell, with the cell's validation (and a GPT cell's test) split and its optimizer's defaults
    filled in."""
    if job_of(cell) == registry.LM:
        return gpt_cell_run(cell, optimizer, seed, **settings)
    depth = cell.get("depth") if cell["arch"] == "fcn" else None
    return ImageRun(arch=cell["arch"], dataset=cell["dataset"], loss=cell.get("loss", "mse"), depth=depth,
                    width=cell.get("width"), batch_size=cell["batch_size"], optimizer=optimizer, seed=seed,
                    val_size=cell.get("val_size", VALIDATION_SIZE.get(cell["dataset"], 0)), epochs=cell["epochs"],
                    **settings).filled()


def gpt_cell_run(cell: Mapping, optimizer: str, seed: int, **settings) -> LMRun:
    """A GPT cell's run: the cell's model, batches and evaluation, the optimizer settings the cell fixes (e.g.
    AdamW's warmup for the cell's length), and the test split held out."""
    fixed = dict(cell.get("settings", {}).get(optimizer) or {})
    return LMRun(text=cell["text"], **cell["model"], batch_size=cell["batch_size"],
                 grad_accum=cell.get("grad_accum", 1), eval_interval=cell["eval_interval"],
                 eval_iters=cell["eval_iters"], optimizer=optimizer, seed=seed, max_iters=cell["max_iters"],
                 test_split=True, **(fixed | settings)).filled()


def check(peers: Mapping) -> None:
    seeds = peers["seeds"]
    if seeds["tuning"] in seeds["evaluation"]:
        raise ConfigError(f"peers.seeds: the tuning seed {seeds['tuning']} is among the evaluation seeds "
                          f"{seeds['evaluation']}; a rate is tuned on one seed and judged on others")
    rule = rule_of(peers)
    if rule not in VALIDATION_RULES:
        raise ConfigError(f"peers.tuning.rule: {rule!r} does not read the validation split; the peers block chooses "
                          f"on held-out data only: use one of {', '.join(VALIDATION_RULES)}")
    low, high = bounds_of(peers)
    if not 0 < low < high:
        raise ConfigError(f"peers.tuning.bounds: [{low}, {high}] is not a range of rates; give [low, high] with "
                          "0 < low < high, e.g. [1.0e-6, 10.0]")
    for name, cell in peers["cells"].items():
        judging = JUDGING[job_of(cell)]
        if judging.reference not in peers["optimizers"]:
            raise ConfigError(f"peers.cells.{name}: its target is the tuned {judging.reference}'s best validation "
                              f"{judging.metric.removeprefix('val_')}, and {judging.reference} is not among "
                              f"peers.optimizers; add {judging.reference} with its rate grid, or drop the cell")
        if job_of(cell) == registry.LM:
            check_gpt_cell(peers, name, cell)
            continue
        if cell["dataset"] not in VALIDATION_SIZE and "val_size" not in cell:
            raise ConfigError(f"peers.cells.{name}: {cell['dataset']} has no validation split here, and the peers "
                              "block chooses on one; use a dataset held in memory")
    for optimizer, rates in peers["optimizers"].items():
        for lr in rates or []:
            if not low <= lr <= high:
                raise ConfigError(f"peers.optimizers.{optimizer}: the rate {lr:g} lies outside peers.tuning.bounds "
                                  f"[{low:g}, {high:g}]; widen the bounds or drop the rate")
    image_cells = [name for name, cell in peers["cells"].items() if job_of(cell) == registry.IMAGE]
    for name in ablation_cells(peers):
        if name not in image_cells:
            raise ConfigError(f"peers.init_ablation: {name!r} is not an image cell (Algorithm 1's init is for the "
                              f"image networks); choose among {', '.join(image_cells)}")
    sensitivity = peers.get("sensitivity")
    if sensitivity and sensitivity["cell"] not in image_cells:
        raise ConfigError(f"peers.sensitivity.cell: {sensitivity['cell']!r} is not an image cell; choose one of "
                          f"{', '.join(image_cells)}")
    for optimizer in peers["optimizers"]:
        if not any(applies(optimizer, cell) for cell in peers["cells"].values()):
            jobs = " or ".join(f"{job} cells" for job in registry.get(optimizer).jobs)
            raise ConfigError(f"peers.optimizers.{optimizer}: no cell of the block is one it trains ({jobs}); add "
                              "such a cell or drop the optimizer")


def check_gpt_cell(peers: Mapping, name: str, cell: Mapping) -> None:
    from agd.plan.lm_grid import GATED_TEXTS  # lm_grid plans the peers' GPT cells: imported here, not at the top

    if cell["text"] in GATED_TEXTS:
        always_there = " or ".join(text for text in TEXTS if text not in GATED_TEXTS)
        raise ConfigError(f"peers.cells.{name}: {cell['text']} is trained only where a config turns it on (days on "
                          f"8 GPUs); a GPT cell of the block trains a text that is always there: use {always_there}")
    for optimizer, settings in cell.get("settings", {}).items():
        if optimizer not in peers["optimizers"] or not applies(optimizer, cell):
            raise ConfigError(f"peers.cells.{name}.settings.{optimizer}: not an optimizer of the block that trains "
                              "a GPT; drop its settings")
        if "lr" in (settings or {}):
            raise ConfigError(f"peers.cells.{name}.settings.{optimizer}: lr is tuned (or the optimizer's default), "
                              "never fixed by a cell; drop it")
    if cell["eval_interval"] >= cell["max_iters"]:
        raise ConfigError(f"peers.cells.{name}: eval_interval {cell['eval_interval']} is not below max_iters "
                          f"{cell['max_iters']}: the run would log no row between its first and its last; the time "
                          "to a target needs rows along the way")


def ablation_cells(peers: Mapping) -> list[str]:
    return list(peers.get("init_ablation", []))


def swapped_init(optimizer: str) -> str:
    """The init an ablation run of `optimizer` starts from: the one it does not start from by default."""
    own = registry.get(optimizer).init
    return registry.PYTORCH_DEFAULT if own == registry.ORTHOGONAL else registry.ORTHOGONAL


def untuned_runs(peers: Mapping, name: str, optimizer: str) -> Iterator[tuple[str, ImageRun]]:
    """(role, run) of an optimizer without a grid on a cell: one per evaluation seed, and its ablation runs."""
    cell = peers["cells"][name]
    if not applies(optimizer, cell):
        return
    for seed in peers["seeds"]["evaluation"]:
        yield EVALUATION, cell_run(cell, optimizer, seed)
    if name in ablation_cells(peers):
        for seed in peers["seeds"]["evaluation"]:
            yield ABLATION, cell_run(cell, optimizer, seed, init=swapped_init(optimizer))


def knob_values(optimizer: str, decades: int) -> list[float]:
    """The optimizer's scale knob from 10^-decades to 10^decades times its default, a decade apart."""
    entry = registry.get(optimizer)
    default = entry.defaults.get(entry.knob, 1.0)
    return [default * 10.0 ** k for k in range(-decades, decades + 1)]


def sensitivity_runs(peers: Mapping) -> list[RunSpec]:
    """The untuned optimizers' knob sweeps; a tuned optimizer's sweep is its study (not planned here)."""
    study = peers.get("sensitivity")
    if not study:
        return []
    cell = peers["cells"][study["cell"]]
    return [cell_run(cell, optimizer, peers["seeds"]["tuning"], **{registry.get(optimizer).knob: value})
            for optimizer in peers["optimizers"] if not registry.get(optimizer).tuned and applies(optimizer, cell)
            for value in knob_values(optimizer, study["decades"])]


# --- tuning studies ---

@dataclass(frozen=True)
class Study:
    """A tuned optimizer's rate study on one cell: its initial grid on the tuning seed, judged by `rule` on the
    validation split over the cell's length (`epochs`: a GPT cell's iterations), extended within `bounds` (not at
    all in a smoke run). `job`: the job that trains its runs."""

    name: str
    cell: str
    optimizer: str
    rates: tuple[float, ...]
    rule: str
    bounds: tuple[float, float]
    extend: bool
    epochs: int

    job: str = registry.IMAGE

    def grid_run(self, peers: Mapping, lr: float) -> RunSpec:
        return cell_run(peers["cells"][self.cell], self.optimizer, peers["seeds"]["tuning"], lr=lr)

    def chosen_runs(self, peers: Mapping, lr: float) -> list[tuple[str, RunSpec]]:
        """(role, run) of the chosen rate: on every evaluation seed, and from the other init where the cell is
        in the ablation."""
        cell = peers["cells"][self.cell]
        runs = [(EVALUATION, cell_run(cell, self.optimizer, seed, lr=lr)) for seed in peers["seeds"]["evaluation"]]
        if self.cell in ablation_cells(peers):
            runs += [(ABLATION, cell_run(cell, self.optimizer, seed, lr=lr, init=swapped_init(self.optimizer)))
                     for seed in peers["seeds"]["evaluation"]]
        return runs


def reachable_rates(study: Study) -> list[float]:
    """Every rate the study can come to try: its grid, and each decade outwards from its edges within its bounds
    (none beyond the grid when it does not extend)."""
    rates = set(study.rates)
    if study.extend:
        low, high = study.bounds
        lr = min(study.rates)
        while decade(lr, -1) >= low * (1 - 1e-9):
            lr = decade(lr, -1)
            rates.add(lr)
        lr = max(study.rates)
        while decade(lr, 1) <= high * (1 + 1e-9):
            lr = decade(lr, 1)
            rates.add(lr)
    return sorted(rates)


def studies(preset: Mapping, smoke: bool = False) -> list[Study]:
    """Every (cell, tuned optimizer) study of the block, each named stably from what it decides on."""
    peers = block(preset)
    if not peers:
        return []
    result = []
    for cell_name, cell in peers["cells"].items():
        for optimizer, rates in peers["optimizers"].items():
            if not registry.get(optimizer).tuned or not applies(optimizer, cell):
                continue
            rates = tuple(sorted(float(lr) for lr in rates))
            rule = cell_rule(peers, cell)
            what = "\n".join(map(str, [cell_name, sorted(cell.items()), optimizer, rates, rule,
                                       bounds_of(peers), not smoke, peers["seeds"]]))
            digest = hashlib.sha1(what.encode()).hexdigest()[:8]
            result.append(Study(f"{cell_name}-{optimizer}-{digest}", cell_name, optimizer, rates, rule,
                                bounds_of(peers), not smoke, length_of(cell), job_of(cell)))
    return result


# --- the runs a study adds once it has decided ---

GRID, CHOSEN = "grid", "chosen"


def decided_bundle(study: Study, kind: str, lr: float) -> str:
    """The name of the training job that trains a study's extension of its grid to `lr` (GRID), or the runs of
    its chosen rate `lr` (CHOSEN)."""
    return f"{study.name}-{kind}-lr{lr_tag(lr)}"


def decided_jobs(studies_: Iterable[Study]) -> dict[str, tuple[Study, str, float]]:
    """{job name: (study, kind, lr)} for every bundle a study may come to ask for: an extension to each rate it can
    reach, and the chosen runs of each rate it can choose."""
    jobs = {}
    for study in studies_:
        for lr in reachable_rates(study):
            if lr not in study.rates:
                jobs[decided_bundle(study, GRID, lr)] = (study, GRID, lr)
            jobs[decided_bundle(study, CHOSEN, lr)] = (study, CHOSEN, lr)
    return jobs


def decided_runs(peers: Mapping, study: Study, kind: str, lr: float) -> list[RunSpec]:
    """What a decided job trains: the grid run at `lr`, or the chosen rate's evaluation (and ablation) runs."""
    if kind == GRID:
        return [study.grid_run(peers, lr)]
    return [run for _, run in study.chosen_runs(peers, lr)]


def decided_lm_runs(peers: Mapping, studies_: Iterable[Study]) -> dict[str, LMRun]:
    """{run id: run} of every run a GPT study may come to ask for (an extension, or a chosen rate's runs)."""
    runs = {}
    for study in studies_:
        if study.job != registry.LM:
            continue
        for lr in reachable_rates(study):
            for kind in (GRID, CHOSEN):
                runs |= {run.run_id(): run for run in decided_runs(peers, study, kind, lr)}
    for run in runs.values():  # refused now, not once a study has trained its way to it
        problem = run.problem()
        if problem:
            raise ConfigError(f"peers.cells: {run.program} would refuse a run a study may come to ask for "
                              f"({run.optimizer} at lr {run.lr:g}): {problem}")
    return runs


# --- membership ---

def membership(preset: Mapping, job: str = registry.IMAGE) -> pd.DataFrame:
    """The runs of `job` known before any study decides, one row per (figure, cell, run) with its role: the
    untuned optimizers' evaluation and ablation runs, every study's initial grid, and the sensitivity sweeps."""
    peers = block(preset)
    if not peers:
        return pd.DataFrame()
    check(peers)
    cells = [name for name, cell in peers["cells"].items() if job_of(cell) == job]
    rows = [member(run, figure=FIGURE, panel=name, gpus=1, enabled=True, role=role)
            for name in cells
            for optimizer in peers["optimizers"] if not registry.get(optimizer).tuned
            for role, run in untuned_runs(peers, name, optimizer)]
    rows += [member(study.grid_run(peers, lr), figure=FIGURE, panel=study.cell, gpus=1, enabled=True, role=TUNING)
             for study in studies(preset) if study.cell in cells for lr in study.rates]
    if job != registry.IMAGE:
        decided_lm_runs(peers, studies(preset))  # refuses a run a GPT study may come to ask for, while planning
        return pd.DataFrame(rows)
    sensitivity = peers.get("sensitivity")
    rows += [member(run, figure=SENSITIVITY, panel=sensitivity["cell"], gpus=1, enabled=True, role=SENSITIVITY)
             for run in sensitivity_runs(peers)]
    return pd.DataFrame(rows)


def decided_members(preset: Mapping, study: Study, rates: list[float], chosen: float | None) -> list[dict]:
    """Membership rows a study adds once it has judged: its whole grid (every round), and the chosen rate's runs."""
    peers = block(preset)
    rows = [member(study.grid_run(peers, lr), figure=FIGURE, panel=study.cell, gpus=1, enabled=True, role=TUNING)
            for lr in rates]
    if chosen is not None:
        rows += [member(run, figure=FIGURE, panel=study.cell, gpus=1, enabled=True, role=role)
                 for role, run in study.chosen_runs(peers, chosen)]
    sensitivity = peers.get("sensitivity")
    if sensitivity and sensitivity["cell"] == study.cell:
        rows += [member(study.grid_run(peers, lr), figure=SENSITIVITY, panel=study.cell, gpus=1, enabled=True,
                        role=SENSITIVITY) for lr in rates]
    return rows
