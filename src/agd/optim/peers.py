"""What the peers need beyond their authors' optimizer classes to be trained and evaluated as their authors do.

- AveragedDoG: DoG (`dog-optimizer`) with its polynomial-decay average of the weights (gamma 8), which is what
  is evaluated: the average is swapped into the model for each evaluation and out again after.
- schedule_free_evaluation: Schedule-Free AdamW (`schedulefree`) evaluated at its evaluation point x
  (optimizer.eval()), BatchNorm statistics recomputed there from training batches, as its authors do.
- MuonWithAdamW: torch.optim.Muon on every hidden weight, conv kernels flattened to 2-D views of their storage,
  and AdamW on the first and last layer and any 1-D parameter (Keller Jordan's recipe; in a GPT, Muon on the
  blocks' attention and MLP matrices, AdamW on the embeddings, the head and the LayerNorms, as modded-nanogpt),
  both at one rate: Muon's update is scaled to AdamW's RMS (adjust_lr_fn="match_rms_adamw").
- CosineAnnealed: an optimizer whose rate is annealed to 0 along a cosine over the run's steps (Prodigy's README).
- SCHEDULE_FREE_ALGOPERF: Schedule-Free AdamW's configuration in AlgoPerf's self-tuning track.

Each keeps its whole state in state_dict(), so a resumed run takes the steps of an uninterrupted one.
"""

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

# DoG's authors: reps_rel 1e-6, or 1e-4 for a model with batch normalisation.
DOG_REPS_REL = 1e-6
DOG_REPS_REL_BATCHNORM = 1e-4
DOG_AVERAGE_GAMMA = 8.0
# Keller Jordan's Muon recipe: momentum 0.95 (Nesterov), and the AdamW that takes the first and last layer, at
# Muon's rate: match_rms_adamw scales Muon's update to AdamW's RMS, so one rate serves both. The paper's networks
# are unregularised, and so is Muon here: no weight decay.
MUON_MOMENTUM = 0.95
MUON_LR_ADJUSTMENT = "match_rms_adamw"
AUXILIARY_ADAMW = dict(betas=(0.9, 0.95), eps=1e-10, weight_decay=0.0)
# facebookresearch/schedule_free, schedulefree/algoperf/self_tuning/schedule_free_adamw/submission.py: HPARAMS, and
# warmup_steps = int(warmup_factor * step_hint * 0.75).
SCHEDULE_FREE_ALGOPERF = dict(betas=(0.9, 0.9955159689799007), weight_decay=0.08121616522670176, r=0.75,
                              weight_lr_power=2.0, warmup_fraction=0.02 * 0.75)


def schedule_free_warmup(steps: int) -> int:
    return int(SCHEDULE_FREE_ALGOPERF["warmup_fraction"] * steps)


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in model.modules())


class AveragedDoG:
    """DoG and its iterate average; an optimizer to the training loop (step, zero_grad, state_dict)."""

    def __init__(self, model: nn.Module, lr: float = 1.0):
        from dog import DoG, PolynomialDecayAverager

        reps_rel = DOG_REPS_REL_BATCHNORM if has_batchnorm(model) else DOG_REPS_REL
        self.dog = DoG([p for p in model.parameters() if p.requires_grad], reps_rel=reps_rel, lr=lr)
        self.averager = PolynomialDecayAverager(model, gamma=DOG_AVERAGE_GAMMA)

    @property
    def param_groups(self) -> list[dict]:
        return self.dog.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dog.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self) -> None:
        """DoG's step, or, where a gradient is not finite (DoG's own step asserts then), weights set to NaN: the
        run has diverged, and its epoch ends it as diverged, as any run whose loss is not finite."""
        params = [p for group in self.dog.param_groups for p in group["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        if grads and not torch.isfinite(torch.stack([torch.linalg.vector_norm(g) for g in grads])).all():
            for p in params:
                p.fill_(math.nan)
            return
        self.dog.step()
        self.averager.step()

    def state_dict(self) -> dict:
        return {"dog": self.dog.state_dict(), "averager": self.averager.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.dog.load_state_dict(state["dog"])
        self.averager.load_state_dict(state["averager"])
        # DoG's load_state_dict leaves its running sums on the CPU; its next step adds the parameters' device's.
        for group in self.dog.param_groups:
            device = group["params"][0].device
            for key in ("rbar", "G"):  # present from DoG's first step on
                if key in group:
                    group[key] = group[key].to(device)
            if "eta" in group:
                group["eta"] = [eta.to(device) for eta in group["eta"]]

    @contextmanager
    def evaluating(self, model: nn.Module, batches=None) -> Iterator[None]:
        """The averaged weights (and BatchNorm statistics) in `model` while it is evaluated."""
        current = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        model.load_state_dict(self.averager.averaged_model.state_dict())
        try:
            yield
        finally:
            model.load_state_dict(current)


@contextmanager
def schedule_free_evaluation(optimizer, model: nn.Module | None,
                             batches: Callable[[], Iterable[torch.Tensor]] | None) -> Iterator[None]:
    """The model at Schedule-Free's evaluation point, its BatchNorm statistics recomputed there."""
    optimizer.eval()
    try:
        if model is not None and batches is not None and has_batchnorm(model):
            recompute_batchnorm(model, batches())
        yield
    finally:
        optimizer.train()


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, inputs: Iterable[torch.Tensor]) -> None:
    """BatchNorm's running statistics as the plain average over `inputs` (torch.optim.swa_utils.update_bn)."""
    layers = [module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the batches
    training = model.training
    model.train()
    for x in inputs:
        model(x)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    model.train(training)


class FlatMuon(torch.optim.Muon):
    """torch.optim.Muon on 2-D views of the parameters' storage: a conv kernel [out, in, kh, kw] is updated as
    the matrix [out, in*kh*kw]; the views' gradients are the parameters', copied in before each step."""

    def __init__(self, params: list[torch.Tensor], **settings):
        self.pairs = []
        for p in params:
            if not p.is_contiguous():
                raise ValueError("Muon updates 2-D views of a parameter's storage: it must be contiguous")
            self.pairs.append((p, p.detach().view(p.shape[0], -1)))
        super().__init__([view for _, view in self.pairs], **settings)

    @torch.no_grad()
    def step(self, closure=None):
        for p, view in self.pairs:
            view.grad = None if p.grad is None else p.grad.reshape(view.shape)
        super().step()
        for _, view in self.pairs:
            view.grad = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The parameters hold the gradients; their views' are set only for a step."""
        for p, view in self.pairs:
            view.grad = None
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()


def hidden_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights Muon takes: those of two or more dimensions but the first and last layer's. A model with
    embeddings (a GPT) has them as its first layer and its last linear layer as its last (a GPT's head, which is
    tied to its token embedding); any other model, its first and last weight."""
    weights = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    embeddings = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
    if not embeddings:
        return weights[1:-1]
    head = [m.weight for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    outer = {id(p) for p in [*embeddings, *head]}
    return [p for p in weights if id(p) not in outer]


class MuonWithAdamW:
    """Muon on the hidden weights, AdamW on the first and last layer and 1-D parameters, both at `lr`."""

    def __init__(self, model: nn.Module, lr: float):
        params = [p for p in model.parameters() if p.requires_grad]
        hidden = {id(p) for p in hidden_weights(model)}
        self.optimizers = []
        if hidden:
            self.optimizers.append(FlatMuon([p for p in params if id(p) in hidden], lr=lr, momentum=MUON_MOMENTUM,
                                            nesterov=True, weight_decay=0.0, adjust_lr_fn=MUON_LR_ADJUSTMENT))
        self.optimizers.append(torch.optim.AdamW([p for p in params if id(p) not in hidden], lr=lr,
                                                 **AUXILIARY_ADAMW))

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        return {"optimizers": [opt.state_dict() for opt in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)


class CosineAnnealed:
    """An optimizer whose rate follows lr * (1 + cos(pi * t / T)) / 2 over its T steps (Prodigy's README: \"We also
    recommend using cosine annealing with the method\"); the step count is in its state, so a resumed run anneals
    as an uninterrupted one."""

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int):
        self.optimizer, self.steps, self.t = optimizer, max(int(steps), 1), 0
        self.base = [group["lr"] for group in optimizer.param_groups]

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.optimizer.step()
        self.t += 1
        factor = (1 + math.cos(math.pi * min(self.t, self.steps) / self.steps)) / 2
        for group, base in zip(self.optimizer.param_groups, self.base):
            group["lr"] = base * factor

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "t": self.t, "base": self.base}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.t, self.base = state["t"], state["base"]
