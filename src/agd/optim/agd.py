"""Automatic Gradient Descent, the paper's Algorithm 1 (arXiv:2304.05187)."""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from agd.optim._geometry import (
    eta_from_gradient_summary,
    orthogonal_,
    safe_reciprocal,
    singular_value,
    slice_norms,
)


@dataclass
class WeightGroup:
    """A weight tensor W_k with its singular-value target s_k, and any 1-D parameters that move with it.

    `depth` is how many layers W_k counts for in L (more than 1 for several matrices stored as one).
    """

    name: str
    weight: torch.Tensor
    s: float
    depth: int = 1
    followers: list[tuple[str, torch.Tensor]] = field(default_factory=list)


def norm_type(grad: torch.Tensor) -> torch.dtype:
    """The type a gradient's norm is summed in: float32, or the gradient's own where it is wider."""
    return torch.promote_types(grad.dtype, torch.float32)


class AGD(torch.optim.Optimizer):
    """Algorithm 1 of the paper: no learning rate, one gradient summary G per step.

    Every parameter must be a weight matrix [d_k, d_{k-1}] or a conv kernel [c_out, c_in, k_x, k_y];
    a conv kernel is treated as k_x * k_y separate matrices ("per-submatrix normalisation").

        opt = AGD(model.named_parameters())   # or model.parameters()
        opt.init_weights()                    # orthogonal, singular values s_k = sqrt(d_k / d_{k-1})
        loss.backward(); opt.step()           # opt.eta: this step's automatic learning rate

    Per step: G = (1/L) sum_k s_k ||grad_k||_F, eta = log((1 + sqrt(1 + 4G)) / 2), and
    W_k <- W_k - gain * (eta / L) * s_k * grad_k / ||grad_k||_F, per slice for conv kernels.
    `gain` multiplies the update only (the paper used 1 throughout); `eta` excludes it.
    """

    def __init__(self, params, gain: float = 1.0):
        if gain <= 0:
            raise ValueError(f"{type(self).__name__} gain must be positive, got {gain}")
        self.groups: list[WeightGroup] = []
        self._registered = 0
        self._eta: torch.Tensor | None = None
        self._G: torch.Tensor | None = None
        super().__init__(params, dict(gain=gain))

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        names = group.get("param_names") or [None] * len(group["params"])
        for name, p in zip(names, group["params"]):
            self._register(name or f"parameter #{self._registered}", name, p)
            self._registered += 1

    def _register(self, label: str, name: str | None, p: torch.Tensor) -> None:
        if p.ndim < 2:
            raise ValueError(
                f"AGD cannot update {label} of shape {tuple(p.shape)}: Algorithm 1 covers weight "
                "matrices and conv kernels only. Build the model without biases and affine "
                "parameters (bias=False, BatchNorm affine=False), or use agd.optim.AGDBias, "
                "the bias/affine-aware variant."
            )
        self.groups.append(WeightGroup(label, p, singular_value(p)))

    @property
    def L(self) -> int:
        """Depth: the number of weight matrices (of weight tensors, for the variants that count no stacks)."""
        return sum(group.depth for group in self.groups)

    @property
    def eta(self) -> float | None:
        """The automatic learning rate of the last step (None before the first)."""
        return None if self._eta is None else float(self._eta)

    @property
    def eta_tensor(self) -> torch.Tensor | None:
        """eta of the last step as a 0-d tensor on the device: reading it does not wait for the GPU."""
        return self._eta

    @property
    def G(self) -> float | None:
        """The gradient summary of the last step (None before the first)."""
        return None if self._G is None else float(self._G)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Orthogonal init with every singular value equal to s_k (Prescription 1); biases zero."""
        for group in self.groups:
            orthogonal_(group.weight, group.s)
            for name, p in group.followers:
                if "bias" in name:
                    p.zero_()

    def _live(self) -> list[WeightGroup]:
        return [group for group in self.groups if group.weight.grad is not None]

    @torch.no_grad()
    def _slice_norms(self, groups: list[WeightGroup]) -> list[torch.Tensor]:
        """||grad_k slice||_F of each group, in float32 or the gradients' wider type (float64 stays float64): one
        fused pass over the matrices of each type (0-d results), one norm per conv kernel ([1, 1, k_x, k_y],
        broadcasting against it)."""
        norms: list[torch.Tensor | None] = [None] * len(groups)
        by_type: dict[torch.dtype, list[int]] = {}
        for i, group in enumerate(groups):
            if group.weight.ndim == 2:
                by_type.setdefault(norm_type(group.weight.grad), []).append(i)
        for dtype, matrices in by_type.items():
            fused = torch._foreach_norm([groups[i].weight.grad for i in matrices], 2, dtype=dtype)
            for i, norm in zip(matrices, fused):
                norms[i] = norm
        for i, group in enumerate(groups):
            if norms[i] is None:
                norms[i] = slice_norms(group.weight.grad.to(norm_type(group.weight.grad)))
        return norms

    def _summary(self, groups: list[WeightGroup], norms: list[torch.Tensor]) -> torch.Tensor:
        """G = (1/L) sum_k s_k sum_slices ||grad_k slice||_F, on the weights' device."""
        device = self.groups[0].weight.device
        if not groups:
            return torch.zeros((), device=device)
        return torch.stack([group.s * norm.sum().to(device) for group, norm in zip(groups, norms)]).sum() / self.L

    @torch.no_grad()
    def gradient_summary(self) -> torch.Tensor:
        """G = (1/L) sum_k s_k sum_slices ||grad_k slice||_F, from the current .grad fields."""
        groups = self._live()
        return self._summary(groups, self._slice_norms(groups))

    @torch.no_grad()
    def eta_from_gradients(self) -> torch.Tensor:
        """eta = log((1 + sqrt(1 + 4G)) / 2) of the current .grad fields, without a step (AGD's rate at init)."""
        return eta_from_gradient_summary(self.gradient_summary())

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        groups = self._live()
        norms = self._slice_norms(groups)  # each gradient is read once for its norms, once for the update
        G = self._summary(groups, norms)
        eta = eta_from_gradient_summary(G)
        # Read gains from param_groups each step: load_state_dict replaces those dicts.
        gain = {id(p): g["gain"] for g in self.param_groups for p in g["params"]}
        for group, norm in zip(groups, norms):
            grad = group.weight.grad
            u = (gain[id(group.weight)] / self.L) * group.s * eta.to(grad.device)
            # W_k <- W_k - u grad_k / ||grad_k slice||_F, in place and without a synchronising read of eta
            group.weight.addcmul_(grad, (u * safe_reciprocal(norm)).to(grad.dtype), value=-1)
            if group.followers:
                # Followers are normalised by the whole weight gradient, not per slice.
                follower_scale = u * safe_reciprocal(norm.square().sum().sqrt())
                for _, p in group.followers:
                    if p.grad is not None:
                        p.sub_(follower_scale * p.grad)

        self._G, self._eta = G, eta
        return loss
