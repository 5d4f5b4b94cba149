"""Optimizers: AGD (Algorithm 1), its bias/affine-aware and transformer variants, and the registry of every
optimizer the jobs train with (agd.optim.registry).

Importing this package imports no torch: the optimizer classes load on first use, so that planning and
tables can read the registry.
"""

from types import SimpleNamespace

from agd.lazy import lazy_attributes
from agd.optim import registry

_LAZY = {
    "AGD": "agd.optim.agd",
    "AGDBias": "agd.optim.agd_bias",
    "resnet_block_scale": "agd.optim.agd_bias",
    "TransformerAGD": "agd.optim.agd_transformer",
    "is_skipped": "agd.optim.agd_transformer",
}

__all__ = [*_LAZY, "build_optimizer", "build_transformer_optimizer", "registry"]
__getattr__ = lazy_attributes(__name__, _LAZY)


def build_optimizer(name: str, model, *, lr: float | None = None, gain: float = 1.0):
    """The optimizer `name` over an image `model`, with its initialisation applied (AGD variants
    re-initialise orthogonally; the others keep PyTorch's default init), at its registry defaults."""
    entry = registry.get(name)
    if registry.IMAGE not in entry.builders:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(registry.names(registry.IMAGE))}")
    return entry.build(registry.IMAGE, model, run_settings(entry, {"lr": lr, "gain": gain}))


def build_transformer_optimizer(name: str, model, *, n_layer: int, gain: float = 1.0, **settings):
    """TransformerAGD (its init applied, LayerNorms frozen) or nanoGPT's AdamW for a GPT; AdamW's settings
    (lr, weight_decay, betas) default to the registry's."""
    if name not in registry.names(registry.LM):
        raise ValueError(f"unknown transformer optimizer {name!r}; "
                         f"choose from {', '.join(registry.names(registry.LM))}")
    if "betas" in settings:
        settings["beta1"], settings["beta2"] = settings.pop("betas")
    entry = registry.get(name)
    return entry.build(registry.LM, model, run_settings(entry, {"n_layer": n_layer, "gain": gain, **settings}))


def run_settings(entry: registry.Optimizer, given: dict) -> SimpleNamespace:
    """What a builder reads of a run: the given settings, and the optimizer's defaults for those left out."""
    filled = {key: value for key, value in entry.filled(given, length=0).items() if value is not None}
    return SimpleNamespace(**({"lr": None} | given | filled))
