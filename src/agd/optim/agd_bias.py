"""AGD with biases and affine parameters: the `agd_prime` variant of the experimental AGD repository."""

import math
import re
from collections.abc import Callable

import torch

from agd.optim._geometry import singular_value
from agd.optim.agd import AGD, WeightGroup


def resnet_block_scale(num_blocks: list[int]) -> Callable[[str], float]:
    """Per-parameter block scale that shrinks residual branches so a stage's product stays ~1/#stages.

    Stem and head: 1. Shortcut (downsample) convs: #stages. Other block weights of stage i:
    #stages ** (1 / num_blocks[i]). The singular-value target is divided by sqrt(block scale).
    """
    stages = len(num_blocks)

    def scale(name: str) -> float:
        stage = re.search(r"layer(\d+)", name)
        if stage is None:
            return 1.0
        if "shortcut" in name or "downsample" in name:
            return float(stages)
        return stages ** (1 / num_blocks[int(stage.group(1)) - 1])

    return scale


class AGDBias(AGD):
    """AGD for networks with biases and affine parameters.

    Parameters are grouped in registration order: each weight tensor (ndim >= 2) opens a group and
    every 1-D parameter joins the group of the weight registered last before it (for a conv followed
    by BatchNorm: the conv's bias and the BN's gamma and beta). L is the number of groups; G and eta
    are Algorithm 1's over the weights. A group moves by u = gain * (eta / L) * s_W: the weight along
    grad_W / ||grad_W slice||_F, each follower along grad_p / ||grad_W||_F. Biases start at zero.

        opt = AGDBias(model.named_parameters(), block_scale=resnet_block_scale(model.num_blocks))

    `block_scale(name)` divides a weight's singular-value target by its square root (ResNets).
    """

    def __init__(self, named_params, gain: float = 1.0, block_scale: Callable[[str], float] | None = None):
        self._block_scale = block_scale or (lambda name: 1.0)
        super().__init__(named_params, gain=gain)

    def _register(self, label: str, name: str | None, p: torch.Tensor) -> None:
        if name is None:
            raise ValueError(
                "AGDBias groups each bias with the weight registered before it, so it needs names: "
                "pass model.named_parameters() instead of model.parameters()."
            )
        if p.ndim >= 2:
            s = singular_value(p) / math.sqrt(self._block_scale(name))
            self.groups.append(WeightGroup(name, p, s))
        elif not self.groups:
            raise ValueError(
                f"AGDBias found the 1-D parameter {name} before any weight tensor: every bias or "
                "affine parameter must follow the weight whose update scale it shares."
            )
        else:
            self.groups[-1].followers.append((name, p))
