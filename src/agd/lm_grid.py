"""The transformer run table: a preset's `transformer` panels expanded into one row per (panel, run).

A panel is a GPT trained on one text, once per optimizer and seed. A run is identified by everything
that decides its numbers; panels that share one share its directory, and it trains for the most
iterations any of them asks for (AdamW's schedule length is part of its key, so that is AGD only).
"""

import itertools

import pandas as pd

from agd.grid import ConfigError, lr_tag, preset_of

FIGURE = "transformer"
MODEL_KEYS = ["n_layer", "n_head", "n_embd", "block_size", "dropout", "bias"]
ADAMW_KEYS = ["lr", "min_lr", "warmup_iters", "lr_decay_iters", "beta1", "beta2", "weight_decay", "grad_clip"]
RUN_KEY = ["text", *MODEL_KEYS, "batch_size", "grad_accum", "eval_interval", "eval_iters", "optimizer",
           *ADAMW_KEYS, "seed"]
RUN_COLUMNS = ["run", *RUN_KEY, "max_iters", "gpus", "enabled"]
MODEL_DEFAULTS = dict(dropout=0.0, bias=False)
ADAMW_DEFAULTS = dict(warmup_iters=100, beta1=0.9, beta2=0.99, weight_decay=0.1, grad_clip=1.0)
# Texts too large to prepare and train on unless the config turns them on.
GATED_TEXTS = ("openwebtext",)


def transformer_panels(config: dict) -> dict:
    return preset_of(config).get(FIGURE, {}).get("panels", {})


def run_id(run: dict) -> str:
    """A readable directory, e.g. gpt-shakespeare_char/l6-h6-e384-b256-drop0.2/bs64-ga1/adamw-lr1e-03-wu100/seed0."""
    model = f"l{run['n_layer']}-h{run['n_head']}-e{run['n_embd']}-b{run['block_size']}"
    if run["dropout"]:
        model += f"-drop{run['dropout']:g}"
    if run["bias"]:
        model += "-bias"
    optimizer = run["optimizer"]
    if optimizer == "adamw":
        optimizer += f"-lr{lr_tag(run['lr'])}-wu{run['warmup_iters']}"
    return f"gpt-{run['text']}/{model}/bs{run['batch_size']}-ga{run['grad_accum']}/{optimizer}/seed{run['seed']}"


def adamw_settings(panel: dict, max_iters: int) -> dict:
    settings = ADAMW_DEFAULTS | dict(panel["optimizers"]["adamw"])
    settings.setdefault("min_lr", settings["lr"] / 10)
    settings.setdefault("lr_decay_iters", max_iters)
    return settings


def expand_panel(name: str, panel: dict, enabled_texts: set[str]) -> list[dict]:
    model = MODEL_DEFAULTS | panel["model"]
    rows = []
    for optimizer, seed in itertools.product(panel["optimizers"], panel.get("seeds", [0])):
        adamw = adamw_settings(panel, panel["max_iters"]) if optimizer == "adamw" else dict.fromkeys(ADAMW_KEYS)
        run = dict(
            figure=FIGURE, panel=name, text=panel["text"], **{k: model[k] for k in MODEL_KEYS},
            batch_size=panel["batch_size"], grad_accum=panel.get("grad_accum", 1),
            eval_interval=panel["eval_interval"], eval_iters=panel["eval_iters"], optimizer=optimizer,
            **{k: adamw[k] for k in ADAMW_KEYS}, seed=seed, panel_max_iters=panel["max_iters"],
            gpus=panel.get("gpus", 1), enabled=panel["text"] not in GATED_TEXTS or panel["text"] in enabled_texts,
        )
        run["run"] = run_id(run)
        rows.append(run)
    return rows


def membership(config: dict) -> pd.DataFrame:
    """One row per (panel, run) of the preset's transformer block; empty when the preset has none."""
    enabled = {text for text in GATED_TEXTS if config.get(text, {}).get("enabled", False)}
    rows = [row for name, panel in transformer_panels(config).items() for row in expand_panel(name, panel, enabled)]
    table = pd.DataFrame(rows, columns=["figure", "panel", *RUN_KEY, "panel_max_iters", "gpus", "enabled", "run"])
    clashes = table.drop_duplicates(["run", *RUN_KEY]).groupby("run").size()
    if (clashes > 1).any():
        run = clashes[clashes > 1].index[0]
        raise ConfigError(f"transformer: two panels train {run} with different settings (AdamW's min_lr, "
                          "betas, weight decay, clip or schedule length); make them equal or change lr or warmup_iters")
    return table


def runs(config: dict) -> pd.DataFrame:
    """The unique runs, each trained as long as any panel needs."""
    table = membership(config)
    grouped = table.groupby("run", sort=True)
    unique = grouped.first()[RUN_KEY + ["enabled"]]
    unique["max_iters"] = grouped["panel_max_iters"].max()
    unique["gpus"] = grouped["gpus"].max()
    return unique.reset_index().reindex(columns=RUN_COLUMNS)
