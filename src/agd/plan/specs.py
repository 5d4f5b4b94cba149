"""What a run is: one typed spec per job kind, from which everything else about a run is derived.

An ImageRun (agd-train) or LMRun (agd-train-lm) holds every setting that decides a run's numbers, and
its length. Its fields are declared once, here, and read everywhere else:

- the grids emit specs, and the run table's columns are their fields;
- the job's command line is generated from a spec (`argv`) and parsed back into one (`add_arguments`,
  `from_args`): flags, types, choices and help come from the fields;
- run identity (what run.json and a checkpoint must match), the run directory and the aggregated CSV
  columns come from the fields' roles.

Roles: KEY settings decide a run's numbers and name its directory; LOGGED settings are part of its identity
but runs shared by figures take the largest (log_steps); the LENGTH (epochs, max_iters) may grow between
attempts. This module imports no torch.
"""

import argparse
import dataclasses
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from agd.data.catalog import DATASETS, TEXTS, dataset_info
from agd.models.catalog import ARCHS, CIFAR_ONLY, DEFAULT_FCN_DEPTH, LOSSES, default_width
from agd.models.gpt_config import GPTConfig
from agd.optim import registry
from agd.plan.checks import AT_LEAST_ONE, NOT_NEGATIVE, POSITIVE, Bounds, number_problem

KEY, LOGGED, LENGTH = "key", "logged", "length"
# Batches are drawn from (seed, index) streams; the largest seed is kept for the evaluation stream.
EVAL_SEED = 2**31 - 1
SEED = Bounds(minimum=0, below=EVAL_SEED, why="the largest seed draws the evaluation batches")


def setting(default, *, help: str = "", role: str = KEY, flag: str | None = None, choices=None,
            column: str | bool | None = None, group: str | None = None, bounds: Bounds = Bounds(),
            added: bool = False):
    """A spec field: its default, where its values may lie, and how it appears on the command line and in
    tables (`column`: the aggregated CSVs' name for it, the field's own by default, False for a setting they
    leave out). An `added` setting came after runs were recorded without it: at its default it stays out of the
    identity, so that those runs remain the same runs."""
    return dataclasses.field(default=default, metadata=dict(help=help, role=role, flag=flag, choices=choices,
                                                            column=column, group=group, bounds=bounds, added=added))


def value_type(annotation) -> type:
    """int for `int | None`, and so on."""
    if isinstance(annotation, types.UnionType):
        (kind,) = [t for t in annotation.__args__ if t is not type(None)]
        return kind
    return annotation


def add_flag(target, flag: str, kind: type, default=None, choices=None, help: str | None = None,
             required: bool = False) -> None:
    """A typed setting as a command-line flag of `target` (a parser or argument group): a bool as a bare flag,
    --no-NAME for one that is on by default."""
    if kind is bool and default:
        target.add_argument("--no-" + flag.removeprefix("--"), dest=flag.removeprefix("--").replace("-", "_"),
                            action="store_false", help=help)
    elif kind is bool:
        target.add_argument(flag, action="store_true", help=help)
    else:
        target.add_argument(flag, type=kind, default=default, choices=choices, required=required, help=help)


def _missing(value) -> bool:
    """None, NaN and pandas' NA: a setting a run table row leaves empty."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA
    except TypeError:
        return True


def lr_tag(lr: float) -> str:
    """1e-04 style when that is exact, else the full value: never two rates in one directory."""
    short = f"{lr:.0e}"
    return short if float(short) == lr else repr(lr)


@dataclass(frozen=True)
class Field:
    """One setting of a spec as the command line and the tables see it."""

    name: str
    kind: type
    default: Any
    role: str
    flag: str
    help: str
    choices: tuple | None
    column: str | None  # None: not a column of the aggregated CSVs
    group: str | None
    bounds: Bounds
    added: bool = False

    @property
    def dest(self) -> str:
        """The argparse destination, also the setting's key in run.json's identity."""
        return self.flag.removeprefix("--").replace("-", "_")


class RunSpec:
    """Shared behaviour of the specs; subclasses are frozen dataclasses of `setting` fields."""

    job: ClassVar[str]           # the registry's job kind
    length: ClassVar[str]        # the field that sets how long a run trains
    program: ClassVar[str]       # the command that runs it
    module: ClassVar[str]        # ... as python -m or torchrun -m

    @classmethod
    def fields(cls) -> tuple[Field, ...]:
        return tuple(
            Field(f.name, value_type(f.type), f.default, f.metadata["role"],
                  f.metadata["flag"] or "--" + f.name.replace("_", "-"), f.metadata["help"], f.metadata["choices"],
                  None if f.metadata["column"] is False else f.metadata["column"] or f.name, f.metadata["group"],
                  f.metadata["bounds"], f.metadata["added"])
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def key_fields(cls) -> tuple[Field, ...]:
        return tuple(f for f in cls.fields() if f.role == KEY)

    @classmethod
    def columns(cls) -> list[str]:
        """The run's parameters as aggregated CSVs name them."""
        return [f.column for f in cls.key_fields() if f.column]

    # --- command line ---

    def argv(self) -> list[str]:
        """The job's arguments for this run: every setting that is not empty, booleans as bare flags."""
        args = []
        for f in self.fields():
            value = getattr(self, f.name)
            if value is None or value is False:
                continue
            if value is True:
                args.append(f.flag)
            else:
                args += [f.flag, repr(value) if f.kind is float else str(value)]
        return args

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, in argument groups where the field names one."""
        groups: dict[str, Any] = {}
        for f in cls.fields():
            target = parser
            if f.group:
                if f.group not in groups:
                    groups[f.group] = parser.add_argument_group(f.group)
                target = groups[f.group]
            add_flag(target, f.flag, f.kind, f.default, f.choices, f.help or None)

    @classmethod
    def from_args(cls, args: argparse.Namespace):
        """The spec of parsed arguments, or of a run.json's; a record made before an `added` setting existed
        ran at its default."""
        return cls(**{f.name: getattr(args, f.dest) if not f.added else getattr(args, f.dest, f.default)
                      for f in cls.fields()})

    # --- identity and tables ---

    def settings(self) -> dict:
        """Every setting, keyed as on the command line (`from_args` reads them back)."""
        return {f.dest: getattr(self, f.name) for f in self.fields()}

    def identity(self) -> dict:
        """What a finished run or checkpoint in a run directory must match, keyed as on the command line."""
        return {f.dest: getattr(self, f.name) for f in self.fields()
                if f.role in (KEY, LOGGED) and not (f.added and getattr(self, f.name) == f.default)}

    def params(self) -> dict:
        """The settings the aggregated CSVs show, under their column names, and the optimizer's family."""
        return {f.column: getattr(self, f.name) for f in self.key_fields() if f.column} | {
            "family": registry.family_of(self.optimizer)}

    @classmethod
    def from_row(cls, row: Mapping):
        """A spec from a run-table row (pandas' NaN and NA are empty settings, numpy scalars Python's; a
        setting the row leaves out takes its default)."""
        values = {}
        for f in cls.fields():
            value = row.get(f.name, f.default)
            values[f.name] = None if _missing(value) else f.kind(value)
        return cls(**values)

    def problem(self) -> str | None:
        """The first setting that the job would refuse, named as its flag, or None."""
        for message in self.problems():
            return message
        return None

    def problems(self) -> Iterator[str]:
        entry = registry.get(self.optimizer)
        for name in registry.owned_settings(self.job):
            if name in entry.settings:
                continue
            f = next(f for f in self.fields() if f.name == name)
            value = getattr(self, name)
            if value is not None and value != f.default:
                owners = ", ".join(registry.owners(name, self.job))
                instead = "has --lr instead" if entry.owns_lr else "sets its own learning rate"
                yield f"{f.flag} is a setting of {owners}; {self.optimizer} {instead}, drop {f.flag}"
        for f in self.fields():
            value = getattr(self, f.name)
            if f.kind in (int, float):
                problem = number_problem(f.flag, value, f.bounds)
                if problem:
                    yield problem


@dataclass(frozen=True)
class ImageRun(RunSpec):
    """One agd-train run: a network on an image dataset with one optimizer and seed."""

    job: ClassVar[str] = registry.IMAGE
    length: ClassVar[str] = "epochs"
    program: ClassVar[str] = "agd-train"
    module: ClassVar[str] = "agd.jobs.train"

    arch: str = setting("fcn", choices=ARCHS)
    dataset: str = setting("cifar10", choices=DATASETS)
    loss: str = setting("mse", choices=LOSSES, help="mse: the paper's square loss; xent: cross-entropy")
    depth: int | None = setting(None, help=f"FCN depth: number of linear layers (default {DEFAULT_FCN_DEPTH})",
                                bounds=Bounds(minimum=2, why="an FCN needs an input and an output layer"))
    width: int | None = setting(None, help="FCN width, or the base width of a conv net (default 256 / 64)",
                                bounds=AT_LEAST_ONE)
    batch_size: int = setting(128, flag="--train-bs", help="training mini-batch size", bounds=AT_LEAST_ONE)
    optimizer: str = setting("agd", choices=registry.names(registry.IMAGE))
    lr: float | None = setting(None, help="learning rate of an optimizer that takes one (default: the registry's, "
                                          "adam 1e-3, sgd 0.1)", bounds=POSITIVE)
    seed: int = setting(0, bounds=SEED)
    bias: bool = setting(False, help="enable biases and BN affine parameters (needs agd-bias for AGD)")
    val_size: int = setting(0, help="training images held out as a validation split, never trained on (0: none, the "
                                    "paper's protocol)", bounds=NOT_NEGATIVE, added=True)
    init: str = setting(registry.OWN_INIT, choices=registry.INITS,
                        help="the weights' initialisation: the optimizer's own (AGD: orthogonal; others: PyTorch's), "
                             "or one of the two for all (an init ablation)", added=True)
    beta: float = setting(1.0, column=False, help="xent inverse temperature: logits are multiplied by it",
                          bounds=POSITIVE)
    gain: float = setting(1.0, column=False, help="AGD update multiplier (the paper used 1)", bounds=POSITIVE)
    d_coef: float | None = setting(None, column=False, help="Prodigy's estimate multiplier (default 1), the knob its "
                                                           "authors name", bounds=POSITIVE, added=True)
    horizon: int | None = setting(None, help="epochs an optimizer's schedule spans (Prodigy's annealing, "
                                             "Schedule-Free's warmup; default --epochs)", bounds=AT_LEAST_ONE,
                                  added=True)
    log_steps: int = setting(0, role=LOGGED, help="also log a row after each of the first N iterations",
                             bounds=NOT_NEGATIVE)
    epochs: int = setting(200, role=LENGTH, help="training epochs after the epoch-0 pass at init",
                          bounds=NOT_NEGATIVE)

    def run_id(self) -> str:
        """A readable directory, e.g. fcn-mnist5k-mse/d8-w256-bs128/adam-lr1e-04/seed0."""
        objective = self.loss if self.beta == 1.0 else f"{self.loss}-beta{self.beta:g}"
        sizes = f"w{self.width}-bs{self.batch_size}"
        if self.arch == "fcn":
            sizes = f"d{self.depth}-{sizes}"
        if self.bias:
            sizes += "-bias"
        if self.val_size:
            sizes += f"-val{self.val_size}"
        optimizer = optimizer_tag(self)
        if self.init != registry.OWN_INIT:
            optimizer += f"-init{self.init}"
        return f"{self.arch}-{self.dataset}-{objective}/{sizes}/{optimizer}/seed{self.seed}"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        if self.arch != "fcn" and self.depth is not None:
            yield f"--depth applies to --arch fcn only; {self.arch} has a fixed depth, drop --depth"
        if self.bias and not registry.get(self.optimizer).trains_bias:
            bias_variants = ", ".join(n for n in registry.names(self.job, registry.AGD) if registry.get(n).trains_bias)
            yield (f"--bias with --optimizer {self.optimizer}: Algorithm 1 has no rule for biases; "
                   f"use --optimizer {bias_variants}")
        if self.loss == "mse" and self.beta != 1.0:
            yield "--beta scales the logits of --loss xent; it has no meaning for --loss mse, drop it"
        if self.arch in CIFAR_ONLY and self.dataset == "imagenet":
            yield f"--arch {self.arch} is the CIFAR variant (32x32 inputs); on imagenet use --arch resnet50 or fcn"
        if self.val_size and self.dataset == "imagenet":
            yield "--val-size: ImageNet is read from folders and keeps no validation split here; drop --val-size"
        elif self.val_size >= dataset_info(self.dataset).train_size:
            yield (f"--val-size {self.val_size} leaves no training images of {self.dataset}'s "
                   f"{dataset_info(self.dataset).train_size}; hold out fewer")
        if self.horizon is not None and not registry.get(self.optimizer).horizon:
            spanning = ", ".join(name for name in registry.names(self.job) if registry.get(name).horizon)
            yield (f"--horizon is the length of a schedule that spans the run ({spanning}); {self.optimizer} has "
                   "none, drop --horizon")
        if self.init != registry.OWN_INIT and self.bias:
            yield "--init applies to bias-free networks (Algorithm 1's init has no rule for biases); drop --bias"

    def filled(self) -> "ImageRun":
        """Defaults that depend on other settings: the FCN depth, the arch's width, the optimizer's rate."""
        changes = {}
        if self.arch == "fcn" and self.depth is None:
            changes["depth"] = DEFAULT_FCN_DEPTH
        if self.width is None:
            changes["width"] = default_width(self.arch)
        changes |= {k: v for k, v in registry.get(self.optimizer).filled(dataclasses.asdict(self), self.epochs).items()
                    if getattr(self, k) is None}
        if self.init == registry.get(self.optimizer).init:
            changes["init"] = registry.OWN_INIT  # its own init by name is its own init: one run, one directory
        if registry.get(self.optimizer).horizon and self.horizon is None:
            changes["horizon"] = self.epochs
        return dataclasses.replace(self, **changes)


def optimizer_tag(run) -> str:
    """The optimizer's part of a run directory: its name, and the settings it was given that name it."""
    tag = run.optimizer
    if run.lr is not None:
        tag += f"-lr{lr_tag(run.lr)}"
    if run.gain != 1.0:
        tag += f"-gain{run.gain:g}"
    if getattr(run, "d_coef", None) not in (None, 1.0):
        tag += f"-dcoef{run.d_coef:g}"
    if getattr(run, "horizon", None) is not None:
        tag += f"-h{run.horizon}"
    return tag


DATA, MODEL, OPTIMIZER, TRAINING = "data", "model (nanoGPT's Shakespeare-char defaults)", "optimizer", "training"


@dataclass(frozen=True)
class LMRun(RunSpec):
    """One agd-train-lm run: a GPT on a token stream with one optimizer and seed."""

    job: ClassVar[str] = registry.LM
    length: ClassVar[str] = "max_iters"
    program: ClassVar[str] = "agd-train-lm"
    module: ClassVar[str] = "agd.jobs.train_lm"

    text: str = setting("python_docs_char", choices=TEXTS, group=DATA)
    test_split: bool = setting(False, group=DATA, help="hold out the second half of the validation tokens as a test "
                                                       "split, never used to choose", added=True)
    n_layer: int = setting(6, group=MODEL, bounds=AT_LEAST_ONE)
    n_head: int = setting(6, group=MODEL, bounds=AT_LEAST_ONE)
    n_embd: int = setting(384, group=MODEL, bounds=AT_LEAST_ONE)
    block_size: int = setting(256, group=MODEL, bounds=AT_LEAST_ONE)
    dropout: float = setting(0.2, group=MODEL, bounds=Bounds(minimum=0, below=1))
    bias: bool = setting(False, group=MODEL,
                         help="biases in the linear layers and LayerNorms")
    batch_size: int = setting(64, group=TRAINING, help="sequences per micro-batch", bounds=AT_LEAST_ONE)
    grad_accum: int = setting(1, group=TRAINING, help="micro-batches per iteration (averaged)", bounds=AT_LEAST_ONE)
    eval_interval: int = setting(250, group=TRAINING, column=False, help="iterations between metric rows",
                                 bounds=AT_LEAST_ONE)
    eval_iters: int = setting(200, group=TRAINING, column=False, help="batches per loss estimate",
                              bounds=AT_LEAST_ONE)
    optimizer: str = setting("agd", choices=registry.names(registry.LM), group=OPTIMIZER)
    gain: float = setting(1.0, group=OPTIMIZER, column=False, help="AGD update multiplier (1 throughout the paper)",
                          bounds=POSITIVE)
    lr: float | None = setting(None, column="peak_lr", group=OPTIMIZER,
                               help="learning rate, AdamW's peak (default: the registry's, adamw 1e-3)",
                               bounds=POSITIVE)
    min_lr: float | None = setting(None, group=OPTIMIZER, column=False,
                                   help="AdamW rate at the end of the cosine (default lr/10)", bounds=NOT_NEGATIVE)
    warmup_iters: int | None = setting(None, group=OPTIMIZER, help="AdamW linear warmup (default 100)",
                                       bounds=NOT_NEGATIVE)
    lr_decay_iters: int | None = setting(None, group=OPTIMIZER, column=False,
                                         help="AdamW cosine length (default --max-iters)", bounds=NOT_NEGATIVE)
    beta1: float | None = setting(None, group=OPTIMIZER, column=False, help="AdamW beta1 (default 0.9)",
                                  bounds=Bounds(minimum=0, below=1))
    beta2: float | None = setting(None, group=OPTIMIZER, column=False, help="AdamW beta2 (default 0.99)",
                                  bounds=Bounds(minimum=0, below=1))
    weight_decay: float | None = setting(None, group=OPTIMIZER, column=False,
                                         help="AdamW decoupled weight decay on matrices (default 0.1)",
                                         bounds=NOT_NEGATIVE)
    grad_clip: float | None = setting(None, group=OPTIMIZER, column=False,
                                      help="AdamW global gradient-norm clip, 0 for none (default 1.0)",
                                      bounds=NOT_NEGATIVE)
    d_coef: float | None = setting(None, group=OPTIMIZER, column=False,
                                   help="Prodigy's estimate multiplier (default 1), the knob its authors name",
                                   bounds=POSITIVE, added=True)
    horizon: int | None = setting(None, group=OPTIMIZER, help="iterations an optimizer's schedule spans (Prodigy's "
                                                              "annealing, Schedule-Free's warmup; default --max-iters)",
                                  bounds=AT_LEAST_ONE, added=True)
    seed: int = setting(0, group=TRAINING, bounds=SEED)
    max_iters: int = setting(5000, role=LENGTH, group=TRAINING, bounds=NOT_NEGATIVE)

    def run_id(self) -> str:
        """A readable directory, e.g.
        gpt-shakespeare_char/l6-h6-e384-b256-drop0.2/bs64-ga1/adamw-lr1e-03-wu100/seed0."""
        model = f"l{self.n_layer}-h{self.n_head}-e{self.n_embd}-b{self.block_size}"
        if self.dropout:
            model += f"-drop{self.dropout:g}"
        if self.bias:
            model += "-bias"
        if self.test_split:
            model += "-test"
        optimizer = optimizer_tag(self)
        if self.warmup_iters is not None:
            optimizer += f"-wu{self.warmup_iters}"
        return f"gpt-{self.text}/{model}/bs{self.batch_size}-ga{self.grad_accum}/{optimizer}/seed{self.seed}"

    def problems(self) -> Iterator[str]:
        yield from super().problems()
        try:
            GPTConfig(vocab_size=1, block_size=self.block_size, n_layer=self.n_layer, n_head=self.n_head,
                      n_embd=self.n_embd, dropout=self.dropout, bias=self.bias)
        except ValueError as e:
            yield f"model: {e}"
        if self.horizon is not None and not registry.get(self.optimizer).horizon:
            spanning = ", ".join(name for name in registry.names(self.job) if registry.get(name).horizon)
            yield (f"--horizon is the length of a schedule that spans the run ({spanning}); {self.optimizer} has "
                   "none, drop --horizon")
        if registry.get(self.optimizer).scheduled:
            yield from self.filled().schedule_problems()

    def schedule_problems(self) -> Iterator[str]:
        """The warmup + cosine schedule, checked once its defaults are filled in."""
        if self.min_lr > self.lr:
            yield f"--min-lr {self.min_lr} is above --lr {self.lr}: the cosine decays from lr down to min-lr"
        if self.warmup_iters > self.lr_decay_iters:
            yield (f"--warmup-iters {self.warmup_iters} is longer than --lr-decay-iters {self.lr_decay_iters} "
                   "(default --max-iters): the cosine would have no length; shorten the warmup")

    def filled(self) -> "LMRun":
        """The optimizer's settings where the run leaves them out (nanoGPT's AdamW, from the registry), and the
        horizon of a schedule that spans the run."""
        entry = registry.get(self.optimizer)
        changes = {k: v for k, v in entry.filled(dataclasses.asdict(self), self.max_iters).items()
                   if getattr(self, k) is None}
        if entry.horizon and self.horizon is None:
            changes["horizon"] = self.max_iters
        return dataclasses.replace(self, **changes)


SPECS = {spec.job: spec for spec in (ImageRun, LMRun)}
# Several runs in one process: the workflow's training jobs of image runs and of GPT runs.
BUNDLE_MODULE = "agd.jobs.bundle"
LM_BUNDLE_MODULE = "agd.jobs.lm_bundle"
