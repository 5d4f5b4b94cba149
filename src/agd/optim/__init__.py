"""Optimizers: AGD (Algorithm 1), its bias/affine-aware and transformer variants, and the registry of every
optimizer the jobs train with (agd.optim.registry).

Importing this package imports no torch: the optimizer classes load on first use, so that planning and
tables can read the registry.
"""

from agd.lazy import lazy_attributes
from agd.optim import registry

_LAZY = {
    "AGD": "agd.optim.agd",
    "AGDBias": "agd.optim.agd_bias",
    "resnet_block_scale": "agd.optim.agd_bias",
    "TransformerAGD": "agd.optim.agd_transformer",
    "is_skipped": "agd.optim.agd_transformer",
}

__all__ = [*_LAZY, "registry"]
__getattr__ = lazy_attributes(__name__, _LAZY)
