"""Optimizers: AGD (Algorithm 1), its bias/affine-aware variant, and the Adam/SGD baselines."""

import torch

from agd.optim.agd import AGD
from agd.optim.agd_bias import AGDBias, resnet_block_scale
from agd.optim.agd_transformer import TransformerAGD, is_skipped

OPTIMIZERS = ("agd", "agd-bias", "adam", "sgd")
# The paper's "default" rates for the untuned baselines (showcase figure).
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.1}

# Language models: AGD's transformer variant against nanoGPT's AdamW.
TRANSFORMER_OPTIMIZERS = ("agd", "adamw")

__all__ = [
    "AGD", "AGDBias", "DEFAULT_LR", "OPTIMIZERS", "TRANSFORMER_OPTIMIZERS", "TransformerAGD", "build_optimizer",
    "build_transformer_optimizer", "resnet_block_scale",
]


def build_optimizer(name: str, model: torch.nn.Module, *, lr: float | None = None, gain: float = 1.0) -> torch.optim.Optimizer:
    """The optimizer `name` over `model`, with its initialisation applied.

    AGD variants re-initialise the weights (orthogonal); Adam and SGD keep PyTorch's default init and
    PyTorch's defaults for everything but the learning rate, as in the paper.
    """
    if name == "agd":
        opt = AGD(model.named_parameters(), gain=gain)
    elif name == "agd-bias":
        num_blocks = getattr(model, "num_blocks", None)
        block_scale = resnet_block_scale(num_blocks) if num_blocks else None
        opt = AGDBias(model.named_parameters(), gain=gain, block_scale=block_scale)
    elif name == "adam":
        return torch.optim.Adam(model.parameters(), lr=DEFAULT_LR["adam"] if lr is None else lr)
    elif name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=DEFAULT_LR["sgd"] if lr is None else lr)
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    opt.init_weights()
    return opt


def build_transformer_optimizer(name: str, model: torch.nn.Module, *, n_layer: int, lr: float = 6e-4,
                                weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.95),
                                gain: float = 1.0) -> torch.optim.Optimizer:
    """TransformerAGD (with its init applied, LayerNorms frozen) or nanoGPT's AdamW for a GPT.

    AdamW as nanoGPT configures it: weight decay on matrices and embeddings only, fused on CUDA; the
    training job sets each step's learning rate from the warmup + cosine schedule.
    """
    if name == "agd":
        for param_name, p in model.named_parameters():
            if is_skipped(param_name):
                p.requires_grad_(False)
        opt = TransformerAGD(model.named_parameters(), n_layer=n_layer, gain=gain)
        opt.init_weights()
        return opt
    if name == "adamw":
        params = [p for p in model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
        ]
        fused = all(p.is_cuda for p in params)
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)
    raise ValueError(f"unknown transformer optimizer {name!r}; choose from {', '.join(TRANSFORMER_OPTIMIZERS)}")
