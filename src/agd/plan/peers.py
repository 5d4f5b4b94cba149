"""Beyond the paper: AGD against the learning-rate-free optimizers of today and Muon, by the protocol of the
optimizer-benchmarking literature (DeepOBS, AlgoPerf), planned from a preset's `peers` block.

- Every optimizer without a rate grid (AGD and the learning-rate-free peers) runs once per evaluation seed, at
  its defaults (role `evaluation`).
- Every tuned baseline runs its rate grid on the tuning seed (role `tuning`); a tuned-evaluation job then picks
  the best rate by config.yaml's tuning_rule over the cell's epochs and runs it on the evaluation seeds. Those
  runs' names are known once the grid has run, so the job writes them into its manifest.
- The sensitivity study (figure `sensitivity`) runs every optimizer's scale knob (agd.optim.registry) over
  `decades` decades either side of its default on the tuning seed; a tuned baseline's grid is its sweep.

Cells are runs of the image job; a run shared with a figure of the paper (fig2's FCN grid, fig1's conv nets)
is one run, trained as long as the longest figure needs.
"""

import dataclasses
import hashlib
from collections.abc import Mapping

import pandas as pd

from agd.optim import registry
from agd.plan.errors import ConfigError
from agd.plan.specs import ImageRun
from agd.plan.table import member

FIGURE, SENSITIVITY = "peers", "sensitivity"
TUNING, EVALUATION = "tuning", "evaluation"


def block(preset: Mapping) -> dict | None:
    return preset.get(FIGURE)


def cell_run(cell: Mapping, optimizer: str, seed: int, **settings) -> ImageRun:
    """One run of a cell, its optimizer's defaults filled in."""
    depth = cell.get("depth") if cell["arch"] == "fcn" else None
    return ImageRun(arch=cell["arch"], dataset=cell["dataset"], loss=cell.get("loss", "mse"), depth=depth,
                    width=cell.get("width"), batch_size=cell["batch_size"], optimizer=optimizer, seed=seed,
                    epochs=cell["epochs"], **settings).filled()


def check(peers: Mapping) -> None:
    seeds = peers["seeds"]
    if seeds["tuning"] in seeds["evaluation"]:
        raise ConfigError(f"peers.seeds: the tuning seed {seeds['tuning']} is among the evaluation seeds "
                               f"{seeds['evaluation']}; a rate is tuned on one seed and judged on others")
    sensitivity = peers.get("sensitivity")
    if sensitivity and sensitivity["cell"] not in peers["cells"]:
        raise ConfigError(f"peers.sensitivity.cell: {sensitivity['cell']!r} is not a cell; choose one of "
                               f"{', '.join(peers['cells'])}")


def runs_of(peers: Mapping, cell: Mapping, optimizer: str) -> list[tuple[str, ImageRun]]:
    """(role, run) of one optimizer on one cell: its grid on the tuning seed, or one run per evaluation seed."""
    seeds = peers["seeds"]
    if registry.get(optimizer).tuned:
        return [(TUNING, cell_run(cell, optimizer, seeds["tuning"], lr=lr)) for lr in peers["optimizers"][optimizer]]
    return [(EVALUATION, cell_run(cell, optimizer, seed)) for seed in seeds["evaluation"]]


def knob_values(optimizer: str, decades: int) -> list[float]:
    """The optimizer's scale knob from 10^-decades to 10^decades times its default, a decade apart."""
    entry = registry.get(optimizer)
    default = entry.defaults.get(entry.knob, 1.0)
    return [default * 10.0 ** k for k in range(-decades, decades + 1)]


def sensitivity_runs(peers: Mapping) -> list[ImageRun]:
    study = peers.get("sensitivity")
    if not study:
        return []
    cell = peers["cells"][study["cell"]]
    runs = []
    for optimizer in peers["optimizers"]:
        entry = registry.get(optimizer)
        if entry.tuned:
            runs += [run for _, run in runs_of(peers, cell, optimizer)]
        else:
            runs += [cell_run(cell, optimizer, peers["seeds"]["tuning"], **{entry.knob: value})
                     for value in knob_values(optimizer, study["decades"])]
    return runs


def membership(preset: Mapping) -> pd.DataFrame:
    """One row per (figure, cell, run) of the peers block: figure `peers` and `sensitivity`, with each run's role."""
    peers = block(preset)
    if not peers:
        return pd.DataFrame()
    check(peers)
    rows = [member(run, figure=FIGURE, panel=name, gpus=1, enabled=True, role=role)
            for name, cell in peers["cells"].items()
            for optimizer in peers["optimizers"]
            for role, run in runs_of(peers, cell, optimizer)]
    study = peers.get("sensitivity")
    rows += [member(run, figure=SENSITIVITY, panel=study["cell"], gpus=1, enabled=True, role=SENSITIVITY)
             for run in sensitivity_runs(peers)]
    return pd.DataFrame(rows)


def evaluations(preset: Mapping, rule: str) -> list[dict]:
    """The tuned-evaluation jobs: per cell and tuned optimizer, its grid's runs (the candidates), the evaluation
    seeds, the epochs the rate is judged over, and the rule; each with a stable name."""
    peers = block(preset)
    if not peers:
        return []
    jobs = []
    for name, cell in peers["cells"].items():
        for optimizer in peers["optimizers"]:
            if not registry.get(optimizer).tuned:
                continue
            candidates = sorted(run.run_id() for _, run in runs_of(peers, cell, optimizer))
            seeds = list(peers["seeds"]["evaluation"])
            what = "\n".join([*candidates, str(seeds), str(cell["epochs"]), rule])
            digest = hashlib.sha1(what.encode()).hexdigest()[:10]
            jobs.append(dict(name=f"tuned-{name}-{optimizer}-{digest}", cell=name, optimizer=optimizer,
                             candidates=candidates, seeds=seeds, epochs=cell["epochs"], rule=rule,
                             dataset=cell["dataset"], arch=cell["arch"]))
    return jobs


def evaluation_run(candidate: ImageRun, seed: int, epochs: int) -> ImageRun:
    """A tuned rate's run on an evaluation seed: the chosen grid run's settings, this seed, the cell's epochs."""
    return dataclasses.replace(candidate, seed=seed, epochs=epochs, log_steps=0)
