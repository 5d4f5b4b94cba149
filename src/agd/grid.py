"""The run table: a preset's figure grids expanded into one row per (figure, panel, run).

Data flows one way: config.yaml -> run table -> one training job per unique run -> metrics.csv.
A run is identified by what decides its numbers (arch, data, loss, sizes, optimizer, lr, seed, bias);
figures that share one share its directory, and it trains for the longest epoch count any of them
asks for (epoch e of a run does not depend on how many epochs follow it).
"""

import itertools
import math

import pandas as pd

from agd.arguments import AGD_OPTIMIZERS
from agd.data import dataset_info
from agd.models import default_width

FIGURES = ("showcase", "fig1", "fig2", "fig3", "fig4")
RUN_KEY = ["arch", "dataset", "loss", "depth", "width", "batch_size", "optimizer", "lr", "seed", "bias"]
RUN_COLUMNS = ["run", *RUN_KEY, "epochs", "log_steps", "gpus", "enabled"]
FIRST_EPOCH = "first_epoch"


class ConfigError(ValueError):
    """A config.yaml problem, named by its key."""


def preset_of(config: dict) -> dict:
    name = config.get("preset")
    presets = config.get("presets", {})
    if name not in presets:
        raise ConfigError(f"preset: {name!r} is not defined; choose one of {', '.join(presets)} "
                          "(e.g. --config preset=quick)")
    return presets[name]


def lr_tag(lr: float) -> str:
    """1e-04 style when that is exact, else the full value: never two rates in one directory."""
    short = f"{lr:.0e}"
    return short if float(short) == lr else repr(lr)


def run_id(run: dict) -> str:
    """A readable directory, e.g. fcn-mnist5k-mse/d8-w256-bs128/adam-lr1e-04/seed0."""
    sizes = f"w{run['width']}-bs{run['batch_size']}"
    if run["arch"] == "fcn":
        sizes = f"d{run['depth']}-{sizes}"
    if run["bias"]:
        sizes += "-bias"
    optimizer = run["optimizer"] if run["lr"] is None else f"{run['optimizer']}-lr{lr_tag(run['lr'])}"
    return f"{run['arch']}-{run['dataset']}-{run['loss']}/{sizes}/{optimizer}/seed{run['seed']}"


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


def expand_panel(figure: str, panel_name: str, panel: dict, imagenet_enabled: bool) -> list[dict]:
    rows = []
    depths = panel.get("depth", [None]) if panel["arch"] == "fcn" else [None]
    widths = panel.get("width", [None])
    optimizer_lrs = [(opt, lr) for opt, lrs in panel["optimizers"].items()
                     for lr in ([None] if opt in AGD_OPTIMIZERS else lrs)]
    for depth, width, batch_size, (optimizer, lr), seed in itertools.product(
        depths, widths, panel["batch_size"], optimizer_lrs, panel.get("seeds", [0])
    ):
        run = dict(
            figure=figure, panel=panel_name, arch=panel["arch"], dataset=panel["dataset"],
            loss=panel.get("loss", "mse"), depth=depth, width=width or default_width(panel["arch"]),
            batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed, bias=panel.get("bias", False),
            panel_epochs=panel_epochs(panel, panel["dataset"], batch_size),
            panel_log_steps=panel_log_steps(panel, panel["dataset"], batch_size),
            gpus=panel.get("gpus", 1),
            enabled=panel["dataset"] != "imagenet" or imagenet_enabled,
        )
        run["run"] = run_id(run)
        rows.append(run)
    return rows


def membership(config: dict) -> pd.DataFrame:
    """One row per (figure, panel, run) of the chosen preset, ImageNet rows marked enabled=False when off."""
    preset = preset_of(config)
    imagenet_enabled = bool(config.get("imagenet", {}).get("enabled", False))
    rows = [
        row
        for figure, spec in preset["figures"].items()
        for panel_name, panel in spec["panels"].items()
        for row in expand_panel(figure, panel_name, panel, imagenet_enabled)
    ]
    table = pd.DataFrame(rows)
    table["depth"] = table["depth"].astype("Int64")
    return table


def runs(config: dict) -> pd.DataFrame:
    """The unique runs: one row each, training as long and logging as many steps as any figure needs."""
    table = membership(config)
    grouped = table.groupby("run", sort=True, dropna=False)
    unique = grouped.first()[RUN_KEY + ["enabled"]]
    unique["epochs"] = grouped["panel_epochs"].max()
    unique["log_steps"] = grouped["panel_log_steps"].max()
    unique["gpus"] = grouped["gpus"].max()
    return unique.reset_index()[RUN_COLUMNS]
