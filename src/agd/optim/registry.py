"""The optimizer registry: what each optimizer is, what it owns of a run's settings, and how a loop drives it.

One entry per optimizer. Everything that asks "is this AGD?", "does it take a learning rate?", "what is its
default?" or "how is it drawn?" reads the entry: the jobs' command lines and checks, the config schema,
the run tables, tuning, figures and numbers. Adding an optimizer is one entry here (and its tests).

This module imports no torch, so that planning and tables can read it: each builder imports what it
builds when it is called.
"""

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

# Families: how a benchmark treats an optimizer.
AGD = "agd"                  # an AGD variant: no learning rate, eta from G
TUNED = "tuned"              # takes a learning rate: tuned on a grid, or run at a stated rate
LR_FREE = "lr-free"          # sets its own step size by other means, run once per seed at its authors' defaults
SELF_TUNING = "self-tuning"  # takes a rate, fixed once for every workload by its authors (AlgoPerf's self-tuning)
FAMILIES = (AGD, TUNED, LR_FREE, SELF_TUNING)

# Job kinds: which training job an optimizer can drive.
IMAGE, LM = "image", "lm"

# Initialisations: each optimizer starts from its own, or a run names one for every optimizer (an init ablation).
ORTHOGONAL = "orthogonal"   # Algorithm 1's: orthogonal, singular values sqrt(d_out/d_in)
PYTORCH_DEFAULT = "pytorch"  # the layers' own reset_parameters
OWN_INIT = "own"
INITS = (OWN_INIT, ORTHOGONAL, PYTORCH_DEFAULT)

# Builder: (model, run spec) -> torch optimizer, with the optimizer's initialisation applied to the model.
Builder = Callable[[Any, Any], Any]


def _unchanged(optimizer, model=None, batches=None) -> AbstractContextManager:
    return nullcontext()


def _nothing(optimizer) -> None:
    return None


def _no_rate(optimizer, run, iteration: int) -> None:
    return None


@dataclass(frozen=True)
class Optimizer:
    """One optimizer: its name, family, what it owns of a run's settings and the hooks a loop calls.

    `settings` are the run-spec fields only this optimizer reads (a learning rate, AdamW's schedule);
    `defaults` fills them when a run leaves them out, and `derived` fills those that follow from the
    others and the run's length. `knob` is its one scale setting (a sensitivity study sweeps it). An
    optimizer of the tuned family has its rate tuned on a grid; the others run at their defaults. `horizon`:
    its schedule spans the run's length (a warmup or an annealing), so runs of different lengths are different
    runs (the image spec's `horizon`). `usage` is how its authors say to run it, quoted with the source, which
    its builder follows. `parametrization` is how a GPT is built for it (agd.models.gpt).

    Hooks, what a training loop does differently per optimizer:
    - `evaluating(opt, model, batches)` is entered around every evaluation (DoG swaps its averaged weights in,
      Schedule-Free moves to its evaluation point and recomputes BatchNorm statistics there from `batches()`);
    - `set_rate(opt, run, iteration)` runs before each step and returns the learning rate it set (AdamW's
      warmup + cosine schedule), or None;
    - `after_step(opt)` runs after each step;
    - `eta(opt)`: the automatic learning rate of the last step as a 0-d tensor, or None;
    - `eta_at_init`: given, the epoch-0 pass computes the gradients at initialisation and logs
      `eta_at_init(opt)`, the rate they would give, without a step;
    - `depth(opt)`: the L that divides its updates, for run.json, or None.
    """

    name: str
    family: str
    label: str
    color: str
    builders: Mapping[str, Builder]
    settings: tuple[str, ...] = ()
    defaults: Mapping[str, float] = field(default_factory=dict)
    derived: Callable[[dict, int], dict] | None = None
    knob: str = "lr"
    init: str = PYTORCH_DEFAULT
    trains_bias: bool = True
    horizon: bool = False
    usage: str = ""
    parametrization: str = "standard"
    evaluating: Callable[..., AbstractContextManager] = _unchanged
    set_rate: Callable[[Any, Any, int], float | None] = _no_rate
    after_step: Callable[[Any], None] = _nothing
    eta: Callable[[Any], Any] = _nothing
    eta_at_init: Callable[[Any], Any] | None = None
    depth: Callable[[Any], int | None] = _nothing

    @property
    def tuned(self) -> bool:
        """Its learning rate is tuned on a grid (a panel gives the grid)."""
        return self.family == TUNED

    @property
    def owns_lr(self) -> bool:
        return "lr" in self.settings

    @property
    def is_agd(self) -> bool:
        return self.family == AGD

    @property
    def scheduled(self) -> bool:
        """Its learning rate follows a schedule that the loop applies through `set_rate`."""
        return self.set_rate is not _no_rate

    @property
    def jobs(self) -> tuple[str, ...]:
        return tuple(self.builders)

    def build(self, job: str, model, run):
        """The torch optimizer over `model` for a `job` run, its initialisation applied: its own, or the one the
        run names (`init`: Algorithm 1's orthogonal init drawn exactly as AGD's run of the same seed draws it)."""
        if job not in self.builders:
            raise ValueError(f"{self.name} does not train {job} runs; choose one of {', '.join(names(job))}")
        if self.initialisation(run) == ORTHOGONAL and self.init != ORTHOGONAL:
            _orthogonal_init(model)
        return self.builders[job](model, run)

    def initialisation(self, run) -> str:
        """The init a run of this optimizer starts from: ORTHOGONAL or PYTORCH_DEFAULT."""
        init = getattr(run, "init", OWN_INIT)
        return self.init if init == OWN_INIT else init

    def filled(self, given: Mapping[str, Any], length: int) -> dict:
        """This optimizer's settings with defaults where `given` leaves them None or out."""
        values = {name: given.get(name) for name in self.settings}
        for name, value in self.defaults.items():
            if values.get(name) is None:
                values[name] = value
        if self.derived is not None:
            for name, value in self.derived(values, length).items():
                if values.get(name) is None:
                    values[name] = value
        return values


# --- builders (torch is imported when one is called) ---

def _agd(model, run):
    from agd.optim.agd import AGD as Algorithm1

    opt = Algorithm1(model.named_parameters(), gain=run.gain)
    if get("agd").initialisation(run) == ORTHOGONAL:
        opt.init_weights()
    return opt


def _orthogonal_init(model) -> None:
    """Algorithm 1's init of a bias-free model, as AGD's own builder applies it."""
    from agd.optim.agd import AGD as Algorithm1

    Algorithm1(model.named_parameters()).init_weights()


def _agd_bias(model, run):
    from agd.optim.agd_bias import AGDBias, resnet_block_scale

    num_blocks = getattr(model, "num_blocks", None)
    block_scale = resnet_block_scale(num_blocks) if num_blocks else None
    opt = AGDBias(model.named_parameters(), gain=run.gain, block_scale=block_scale)
    opt.init_weights()
    return opt


def _transformer_agd(model, run):
    from agd.optim.agd_transformer import TransformerAGD, is_skipped

    for name, p in model.named_parameters():
        if is_skipped(name):
            p.requires_grad_(False)  # LayerNorms stay at 1 and 0
    opt = TransformerAGD(model.named_parameters(), n_layer=run.n_layer, gain=run.gain)
    opt.init_weights()
    return opt


def _adam(model, run):
    import torch

    return torch.optim.Adam(model.parameters(), lr=run.lr)


def _sgd(model, run):
    import torch

    return torch.optim.SGD(model.parameters(), lr=run.lr)


def _nanogpt_adamw(model, run):
    """nanoGPT's AdamW: weight decay on matrices and embeddings only, fused on CUDA; the job sets each
    step's rate from the warmup + cosine schedule."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": run.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    fused = all(p.is_cuda for p in params)
    return torch.optim.AdamW(groups, lr=run.lr, betas=(run.beta1, run.beta2), fused=fused or None)


def _prodigy(model, run):
    from prodigyopt import Prodigy

    from agd.optim.peers import CosineAnnealed

    return CosineAnnealed(Prodigy(trainable(model), lr=run.lr, d_coef=run.d_coef), training_steps(run))


def _dadapt_adam(model, run):
    from dadaptation import DAdaptAdam

    return DAdaptAdam(trainable(model), lr=run.lr)


def _dog(model, run):
    from agd.optim.peers import AveragedDoG

    return AveragedDoG(model, lr=run.lr)


def _sf_adamw(model, run):
    from schedulefree import AdamWScheduleFree

    from agd.optim.peers import SCHEDULE_FREE_ALGOPERF, schedule_free_warmup

    settings = {key: value for key, value in SCHEDULE_FREE_ALGOPERF.items() if key != "warmup_fraction"}
    opt = AdamWScheduleFree(trainable(model), lr=run.lr, warmup_steps=schedule_free_warmup(training_steps(run)),
                            **settings)
    opt.train()  # its step refuses to run in evaluation mode
    return opt


def _muon(model, run):
    from agd.optim.peers import MuonWithAdamW

    return MuonWithAdamW(model, lr=run.lr)


def training_steps(run) -> int:
    """The optimizer steps a run's schedule spans: its horizon's epochs of its training split's batches (an image
    run), or its horizon's iterations (a language-model run)."""
    if hasattr(run, "max_iters"):
        return int(run.horizon or run.max_iters)
    from agd.data.catalog import dataset_info

    images = dataset_info(run.dataset).train_size - (run.val_size or 0)
    return int(run.horizon or run.epochs) * -(-images // run.batch_size)


def _evaluating(opt, model=None, batches=None):
    """The optimizer's own evaluation context (DoG's average, Schedule-Free's evaluation point)."""
    return opt.evaluating(model, batches)


def _schedule_free_evaluating(opt, model=None, batches=None):
    from agd.optim.peers import schedule_free_evaluation

    return schedule_free_evaluation(opt, model, batches)


def _agd_eta(opt):
    return opt.eta_tensor


def _agd_eta_at_init(opt):
    return opt.eta_from_gradients()


def _agd_depth(opt) -> int:
    return opt.L


def _warmup_cosine(opt, run, iteration: int) -> float:
    """nanoGPT's schedule, applied to every parameter group."""
    from agd.optim.schedule import warmup_cosine

    lr = warmup_cosine(iteration, lr=run.lr, min_lr=run.min_lr, warmup_iters=run.warmup_iters,
                       decay_iters=run.lr_decay_iters)
    for group in opt.param_groups:
        group["lr"] = lr
    return lr


def trainable(model) -> list:
    return [p for p in model.parameters() if p.requires_grad]


def _adamw_schedule(settings: dict, max_iters: int) -> dict:
    return {"min_lr": settings["lr"] / 10, "lr_decay_iters": max_iters}


AGD_GREEN, ADAM_ORANGE, SGD_RED = "#2ca02c", "#ff7f0e", "#d62728"  # the paper's colours
# What every AGD variant tells a loop: its eta per step and at init, and its depth L.
AGD_HOOKS = dict(eta=_agd_eta, eta_at_init=_agd_eta_at_init, depth=_agd_depth)

REGISTRY: dict[str, Optimizer] = {entry.name: entry for entry in (
    Optimizer("agd", AGD, "AGD", AGD_GREEN, {IMAGE: _agd, LM: _transformer_agd}, settings=("gain",), knob="gain",
              init=ORTHOGONAL, trains_bias=False, parametrization="agd", **AGD_HOOKS),
    Optimizer("agd-bias", AGD, "AGD (bias)", AGD_GREEN, {IMAGE: _agd_bias}, settings=("gain",), knob="gain",
              init=ORTHOGONAL, **AGD_HOOKS),
    # The paper's "default" rates for the untuned baselines (showcase figure).
    Optimizer("adam", TUNED, "Adam", ADAM_ORANGE, {IMAGE: _adam}, settings=("lr",), defaults={"lr": 1e-3}),
    Optimizer("sgd", TUNED, "SGD", SGD_RED, {IMAGE: _sgd}, settings=("lr",), defaults={"lr": 0.1}),
    Optimizer("muon", TUNED, "Muon", "#1f77b4", {IMAGE: _muon, LM: _muon}, settings=("lr",), defaults={"lr": 1e-3},
              usage="Muon on every hidden weight (conv kernels as 2-D views; a GPT's attention and MLP matrices), "
                    "AdamW on the first and last layer (a GPT's embeddings and its head, tied to the token embedding) "
                    "and on the 1-D parameters, one rate for both: torch.optim.Muon's "
                    "adjust_lr_fn=\"match_rms_adamw\", with which \"Muon can directly reuse the learning rate and "
                    "weight decay tuned for AdamW\" (torch.optim.Muon's documentation; KellerJordan/Muon and "
                    "modded-nanogpt for the split of the parameters)"),
    # The learning-rate-free peers at their authors' settings (lr: a multiplier of their estimate).
    Optimizer("prodigy", LR_FREE, "Prodigy", "#9467bd", {IMAGE: _prodigy, LM: _prodigy}, settings=("lr", "d_coef"),
              defaults={"lr": 1.0, "d_coef": 1.0}, knob="d_coef", horizon=True,
              usage="\"We recommend using lr=1. (default) for all networks. If you want to force the method to "
                    "estimate a smaller or larger learning rate, it is better to change the value of d_coef\"; "
                    "\"We also recommend using cosine annealing with the method\" (konstmish/prodigy, README)"),
    Optimizer("dadapt-adam", LR_FREE, "D-Adapt Adam", "#8c564b", {IMAGE: _dadapt_adam, LM: _dadapt_adam},
              settings=("lr",), defaults={"lr": 1.0},
              usage="\"Set the LR parameter to 1.0\"; \"Use the same learning rate scheduler you would normally "
                    "use on the problem\": none here, as for Adam and SGD on the image cells (on a GPT cell too, where the "
                    "tuned AdamW keeps nanoGPT's warmup and cosine: a judgement call, README) "
                    "(facebookresearch/dadaptation, README)"),
    Optimizer("dog", LR_FREE, "DoG (averaged)", "#e377c2", {IMAGE: _dog, LM: _dog}, settings=("lr",),
              defaults={"lr": 1.0}, evaluating=_evaluating,
              usage="DoG's averaged iterate is evaluated (PolynomialDecayAverager, gamma 8), reps_rel 1e-6, or "
                    "1e-4 with batch normalisation, as formll/dog's README says to compare it"),
    Optimizer("sf-adamw", SELF_TUNING, "Schedule-Free AdamW (AlgoPerf)", "#17becf", {IMAGE: _sf_adamw, LM: _sf_adamw},
              settings=("lr",), defaults={"lr": 0.0025}, evaluating=_schedule_free_evaluating, horizon=True,
              usage="the configuration that won AlgoPerf's self-tuning track: lr 0.0025, betas (0.9, 0.9955), "
                    "weight decay 0.0812, warmup 2% (x 0.75) of the steps, r 0.75, weight_lr_power 2 "
                    "(facebookresearch/schedule_free, schedulefree/algoperf/self_tuning/schedule_free_adamw/"
                    "submission.py); evaluated at its evaluation point with BatchNorm statistics recomputed there "
                    "(README: optimizer.eval(), and issue 60)"),
    Optimizer("sf-adamw-tuned", TUNED, "Schedule-Free AdamW (tuned)", "#0e6b75", {IMAGE: _sf_adamw, LM: _sf_adamw},
              settings=("lr",), defaults={"lr": 0.0025}, evaluating=_schedule_free_evaluating, horizon=True,
              usage="the AlgoPerf configuration with its rate tuned on the grid like Adam's: \"This method does "
                    "require tuning\" (facebookresearch/schedule_free, README)"),
    # nanoGPT's Shakespeare-char settings.
    Optimizer("adamw", TUNED, "AdamW", ADAM_ORANGE, {LM: _nanogpt_adamw},
              settings=("lr", "min_lr", "warmup_iters", "lr_decay_iters", "beta1", "beta2", "weight_decay",
                        "grad_clip"),
              defaults={"lr": 1e-3, "warmup_iters": 100, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1,
                        "grad_clip": 1.0},
              derived=_adamw_schedule, set_rate=_warmup_cosine),
)}


def get(name: str) -> Optimizer:
    if name not in REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def names(job: str | None = None, family: str | None = None) -> tuple[str, ...]:
    """Optimizer names, in registry order, that drive `job` runs and belong to `family` (None: any)."""
    return tuple(entry.name for entry in REGISTRY.values()
                 if (job is None or job in entry.builders) and (family is None or entry.family == family))


def family_of(name: str) -> str:
    return get(name).family


def is_agd(name: str) -> bool:
    return get(name).is_agd


def owners(setting: str, job: str) -> tuple[str, ...]:
    """The optimizers of `job` runs that own a setting (e.g. lr)."""
    return tuple(entry.name for entry in REGISTRY.values() if job in entry.builders and setting in entry.settings)


def owned_settings(job: str) -> tuple[str, ...]:
    """Every setting some optimizer of `job` runs owns, in registry order."""
    return tuple(dict.fromkeys(s for entry in REGISTRY.values() if job in entry.builders for s in entry.settings))


def entries(job: str) -> Iterator[Optimizer]:
    return (entry for entry in REGISTRY.values() if job in entry.builders)
