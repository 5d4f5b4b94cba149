"""AGD for a nanoGPT-style transformer: the experimental AGD repository's transformer variant, made consistent.

The rules (paper_spec §1.11c), by nanoGPT parameter name:
- LayerNorm parameters (`ln_` in the name) are skipped: never initialised, never updated (frozen at 1 and 0).
- `attn.c_attn.weight` holds q, k and v stacked [3 n_embd, n_embd]: it counts 3 towards L and its
  singular-value target is sqrt(d_out / (3 d_in)), that of each of the three n_embd x n_embd matrices.
- The residual projections `attn.c_proj.weight` and `mlp.c_proj.weight` have their target divided by
  sqrt(n_layer), so that n_layer residual branches add up to an O(1) change of the stream.
- Everything else, the tied token embedding / output head [vocab, n_embd] and the position embedding
  [block_size, n_embd] included, is a plain matrix with target sqrt(d_out / d_in) counting 1.
- Biases (bias=True) start at zero and move with the weight registered before them, as in AGDBias.
So L = 2 + 6 n_layer (38 for Shakespeare-char's 6 layers, 74 for GPT-2's 12).

Deviations from the original code, each a bug there (spec §1.11c):
- The update uses the same targets as the init and G. The original recomputed them in the step from a
  list instead of a name, so every substring test failed and the step used sqrt(d_out / d_in) for all
  tensors: c_attn moved sqrt(3) and the c_proj weights sqrt(n_layer) further than init and G assume.
- `gain` multiplies the update only and `eta` excludes it, as in AGD; the original folded it into eta.
  With the gain of 1 used everywhere the two agree.
- One attention scale, 1/head_dim on the logits (muP), in the single attention path of agd.models.gpt.
  The original had two: its manual path scaled the logits by 1/head_dim, its fused (flash) path, the
  one that ran on torch >= 2, scaled them by 1/sqrt(head_dim) and the output by another 1/sqrt(head_dim).
  The muP scale is the one its author wrote out, and it keeps attention logits O(1) as the width grows.
- No loss scaling reaches G: the training job uses bf16 autocast, never an fp16 GradScaler (whose
  2^16 factor inflated G in the original), and averages gradient-accumulation micro-batches.
"""

import math

import torch

from agd.optim.agd import WeightGroup
from agd.optim.agd_bias import AGDBias

SKIPPED = "ln_"
STACKED_QKV = "attn.c_attn.weight"
RESIDUAL_PROJECTION = "c_proj.weight"
QKV = 3


def is_skipped(name: str) -> bool:
    return SKIPPED in name


def depth_in_L(name: str) -> int:
    """How many matrices the tensor `name` counts for in L."""
    return QKV if name.endswith(STACKED_QKV) else 1


def singular_value_target(name: str, shape: tuple[int, ...], n_layer: int) -> float:
    """s = sqrt(d_out / (depth d_in)), depth 3 for the stacked q,k,v, n_layer for a residual projection."""
    d_out, d_in = shape
    if name.endswith(STACKED_QKV):
        depth = QKV
    elif name.endswith(RESIDUAL_PROJECTION):
        depth = n_layer
    else:
        depth = 1
    return math.sqrt(d_out / (depth * d_in))


class TransformerAGD(AGDBias):
    """AGD over a GPT's named parameters (LayerNorm ones are dropped: pass them, they are ignored).

        opt = TransformerAGD(model.named_parameters(), n_layer=model.config.n_layer)
        opt.init_weights()                      # orthogonal, singular values s from singular_value_target
        loss.backward(); opt.step()             # opt.eta, opt.G, opt.L as in AGD

    G = (1/L) sum_W s_W ||grad_W||_F, eta = log((1 + sqrt(1 + 4G)) / 2), W <- W - gain (eta/L) s_W grad_W/||grad_W||_F.
    """

    def __init__(self, named_params, n_layer: int, gain: float = 1.0):
        if n_layer < 1:
            raise ValueError(f"n_layer must be positive, got {n_layer}")
        self.n_layer = n_layer
        named_params = list(named_params)
        if not all(isinstance(item, tuple) and isinstance(item[0], str) for item in named_params):
            raise ValueError("TransformerAGD reads each tensor's role from its name: pass model.named_parameters()")
        kept = [(name, p) for name, p in named_params if not is_skipped(name)]
        super().__init__(kept, gain=gain)

    def _register(self, label: str, name: str | None, p: torch.Tensor) -> None:
        if p.ndim > 2:
            raise ValueError(f"TransformerAGD expects matrices and biases; {name} has shape {tuple(p.shape)}")
        if p.ndim == 2:
            s = singular_value_target(name, tuple(p.shape), self.n_layer)
            self.groups.append(WeightGroup(name, p, s, depth=depth_in_L(name)))
        else:
            super()._register(label, name, p)  # a bias: follows the last weight
