"""The language-model run table: a preset's `transformer` panels expanded into one LMRun per (panel, run), then
the GPT cells of its peers block (agd.plan.peers), each row with its role in the study.

A panel is a GPT trained on one text, once per optimizer and seed. Panels that share a run share its
directory, and it trains for the most iterations any of them asks for (AdamW's schedule length is part of
its settings, so that is AGD only).
"""

import itertools

import pandas as pd

from agd.optim import registry
from agd.plan import peers
from agd.plan.grid import ConfigError, preset_of
from agd.plan.specs import LMRun
from agd.plan.table import member, unique_runs

FIGURE = "transformer"
# Texts too large to prepare and train on unless the config turns them on.
GATED_TEXTS = ("openwebtext",)


def transformer_panels(config: dict) -> dict:
    return preset_of(config).get(FIGURE, {}).get("panels", {})


def panel_specs(panel: dict):
    model = panel["model"]  # its dropout and bias filled in by the config schema (gpt_model)
    for optimizer, seed in itertools.product(panel["optimizers"], panel.get("seeds", [0])):
        settings = registry.get(optimizer).filled(panel["optimizers"][optimizer] or {}, panel["max_iters"])
        settings = {name: value for name, value in settings.items() if value is not None}
        yield LMRun(
            text=panel["text"], **model, batch_size=panel["batch_size"], grad_accum=panel.get("grad_accum", 1),
            eval_interval=panel["eval_interval"], eval_iters=panel["eval_iters"], optimizer=optimizer, seed=seed,
            max_iters=panel["max_iters"], **settings,
        )


def membership(config: dict, figure: str | None = None) -> pd.DataFrame:
    """One row per (figure, panel, run) of the preset's transformer block and of its peers' GPT cells (only those
    of `figure` if given); empty when the preset has neither."""
    enabled = {text for text in GATED_TEXTS if config.get(text, {}).get("enabled", False)}
    rows = [member(spec, figure=FIGURE, panel=name, gpus=panel.get("gpus", 1),
                   enabled=panel["text"] not in GATED_TEXTS or panel["text"] in enabled)
            for name, panel in transformer_panels(config).items() for spec in panel_specs(panel)]
    rows += peers.membership(preset_of(config), registry.LM).to_dict("records")
    key = [f.name for f in LMRun.key_fields()]
    table = pd.DataFrame(rows, columns=["figure", "panel", "role", "gpus", "enabled", "run", "family", *key,
                                        "panel_max_iters"])
    clashes = table.drop_duplicates(["run", *key]).groupby("run").size()
    if (clashes > 1).any():
        raise ConfigError(clash_message(table[table["run"] == clashes[clashes > 1].index[0]], key))
    return table if figure is None else table[table["figure"] == figure].reset_index(drop=True)


def clash_message(rows: pd.DataFrame, key: list[str]) -> str:
    """Why two panels (or GPT cells) may not share the run they both train: the settings in which they differ."""
    differing = [name for name in key if rows[name].nunique(dropna=False) > 1]
    panels = " and ".join(sorted({f"{row.figure} panel {row.panel}" for row in rows.itertuples()}))
    settings = "; ".join(f"{name}: {', '.join(map(str, rows[name].drop_duplicates()))}" for name in differing)
    return (f"{panels} train {rows['run'].iloc[0]} with different settings ({settings}); a run's directory is its "
            "identity without these, so make them equal, or tell the runs apart by lr or warmup_iters")


def runs(config: dict, figure: str | None = None) -> pd.DataFrame:
    """The unique runs (of `figure`'s panels if given), each trained as long as any panel needs."""
    return unique_runs(membership(config, figure), LMRun)
