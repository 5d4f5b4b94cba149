"""The image run table: a preset's figure grids expanded into one ImageRun per (figure, panel, run).

Data flows one way: config.yaml -> run specs -> one training job per unique run -> metrics.csv.
A panel is a grid arch x dataset x depth x width x batch size x optimizers (each that takes a learning
rate with its grid of rates) x seeds, with epochs (or iterations), loss and logged steps.
"""

import itertools
import math
from collections.abc import Iterator

import pandas as pd

from agd.data.catalog import dataset_info
from agd.models.catalog import default_width
from agd.optim import registry
from agd.plan import peers, roles
from agd.plan.errors import ConfigError
from agd.plan.specs import ImageRun
from agd.plan.table import member, unique_runs

FIGURES = ("showcase", "fig1", "fig2", "fig3", "fig4")
FIRST_EPOCH = "first_epoch"


def preset_of(config: dict) -> dict:
    name = config.get("preset")
    presets = config.get("presets", {})
    if name not in presets:
        raise ConfigError(f"preset: {name!r} is not defined; choose one of {', '.join(presets)} "
                          "(e.g. --config preset=quick)")
    return presets[name]


def run_id(row) -> str:
    """The directory of the run a run-table row describes."""
    return ImageRun.from_row(row).run_id()


def panel_epochs(panel: dict, dataset: str, batch_size: int) -> int:
    """Epochs of a panel: given, or enough to reach its `iterations` at this batch size."""
    if "iterations" in panel:
        steps = math.ceil(dataset_info(dataset).train_size / batch_size)
        return math.ceil(panel["iterations"] / steps)
    return panel["epochs"]


def panel_log_steps(panel: dict, dataset: str, batch_size: int) -> int:
    value = panel.get("log_steps", 0)
    if value == FIRST_EPOCH:
        return math.ceil(dataset_info(dataset).train_size / batch_size)
    return value


def optimizer_settings(panel: dict) -> list[tuple[str, dict]]:
    """(optimizer, settings) of every run per grid point: one per learning rate of an optimizer that takes one."""
    return [(name, {"lr": lr} if lr is not None else {})
            for name, rates in panel["optimizers"].items()
            for lr in (rates if registry.get(name).tuned else [None])]


def panel_specs(panel: dict) -> Iterator[ImageRun]:
    """The panel's runs, their optimizers' defaults filled in (a learning-rate-free peer's rate multiplier)."""
    depths = panel.get("depth", [None])  # a conv panel with a depth is refused by ImageRun.problems
    for depth, width, batch_size, (optimizer, settings), seed in itertools.product(
        depths, panel.get("width", [None]), panel["batch_size"], optimizer_settings(panel), panel.get("seeds", [0])
    ):
        yield ImageRun(
            arch=panel["arch"], dataset=panel["dataset"], loss=panel.get("loss", "mse"), depth=depth,
            width=width or default_width(panel["arch"]), batch_size=batch_size, optimizer=optimizer, seed=seed,
            bias=panel.get("bias", False), log_steps=panel_log_steps(panel, panel["dataset"], batch_size),
            epochs=panel_epochs(panel, panel["dataset"], batch_size), **settings,
        ).filled()


def membership(config: dict) -> pd.DataFrame:
    """One row per (figure, panel, run) of the chosen preset with its panel's role (agd.plan.roles), ImageNet rows
    marked enabled=False when off; then the peers block's (agd.plan.peers), each with its role in the study."""
    preset = preset_of(config)
    imagenet_enabled = bool(config.get("imagenet", {}).get("enabled", False))
    rows = [
        member(spec, figure=figure, panel=panel_name, **{roles.COLUMN: panel.get("role")}, gpus=panel.get("gpus", 1),
               enabled=panel["dataset"] != "imagenet" or imagenet_enabled)
        for figure, figure_spec in preset["figures"].items()
        for panel_name, panel in figure_spec["panels"].items()
        for spec in panel_specs(panel)
    ]
    table = pd.concat([pd.DataFrame(rows), peers.membership(preset)], ignore_index=True)
    table["depth"] = table["depth"].astype("Int64")
    return table


def runs(config: dict) -> pd.DataFrame:
    """The unique runs: one row each, training as long and logging as many steps as any figure needs."""
    return unique_runs(membership(config), ImageRun)
