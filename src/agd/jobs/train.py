"""The training job: one cell of the paper's grid, resumable, writing metrics.csv and run.json.

Reads top to bottom: build data, model and optimizer, run epoch 0 (measured at init, no update) and the
training epochs, then record the run. Arguments, reuse of --out, resume and the ending are the driver's
(agd.jobs.driver).
"""

import math
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import torch
from tqdm import tqdm

from agd.data.identity import image_data
from agd.data.loading import load_dataset
from agd.data.synthetic import synthetic_images
from agd.jobs import batched, checkpoint, distributed, memory, run_dir
from agd.jobs.arguments import ImageExecution, input_spec, pad_to, parse_args
from agd.jobs.driver import Job, JobError
from agd.jobs.metrics import COLUMNS, EpochMeter, UpdateSize, evaluate, summary_line
from agd.losses import build_loss
from agd.models.build import build_model
from agd.optim import registry
from agd.plan.specs import ImageRun

METRICS_FLUSH_SECONDS = 5.0


class Member(run_dir.RunState):
    """One run's state between epochs and steps: its model, optimizer, meters, rows and position."""

    columns = COLUMNS

    def __init__(self, spec: ImageRun, execution: ImageExecution, data, model, optimizer, loss_fn,
                 device: torch.device, out: Path, ranks: distributed.Ranks = distributed.Ranks(),
                 say: Callable[[str], None] | None = None):
        super().__init__(out, device, ranks)
        self.spec, self.execution, self.data, self.model, self.loss_fn = spec, execution, data, model, loss_fn
        self.opt = optimizer
        self.entry = registry.get(spec.optimizer)
        self.update_size = UpdateSize(model.parameters())
        self.steps_per_epoch = data.steps_per_epoch(spec.batch_size)
        self.say = say or (lambda line: print(line, flush=True))  # where its epoch lines go
        self.initial: dict | None = None  # its state before training, kept by a bundle that resumes it

        self.epoch = 0            # the epoch in progress; 0 is the pass at init
        self.step_in_epoch = 0    # the next batch of that epoch
        self.global_step = 0      # optimizer steps taken
        self.meter = EpochMeter(device)

    # --- persistence ---

    def state_dict(self) -> dict:
        return {
            **super().state_dict(), "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step, "meter": self.meter.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step = state["global_step"]
        self.meter.load_state_dict(state["meter"])

    def position(self) -> str:
        return f"epoch {self.epoch}, step {self.step_in_epoch}"

    def at(self) -> tuple[int, int]:
        return self.epoch, self.step_in_epoch

    def reduce(self, values: list) -> list[float]:
        return distributed.sum_over_ranks(self.ranks, values, self.device)

    def run(self, stop: checkpoint.StopRequest) -> str:
        """Train this run alone; returns 'completed', 'diverged' or 'stopped' (by a signal)."""
        return Cohort([self]).run(stop)

    # --- rows ---

    def end_epoch(self, test: tuple[float, float], val: tuple[float | None, float | None] = (None, None)) -> dict:
        """The epoch's row from its meter and the validation and test metrics, and on to the next epoch."""
        train_loss, train_acc = self.meter.train_metrics(self.reduce)
        eta_mean, eta_min, eta_max = self.meter.eta.summary()
        update_mean, update_min, update_max = self.meter.update.summary()
        row = dict(
            kind="epoch", epoch=self.epoch, step=self.global_step, train_loss=train_loss, train_acc=train_acc,
            val_loss=val[0], val_acc=val[1], test_loss=test[0], test_acc=test[1], eta_mean=eta_mean, eta_min=eta_min,
            eta_max=eta_max, update_mean=update_mean, update_min=update_min, update_max=update_max, lr=self.spec.lr,
            time_s=self.elapsed(),
        )
        self.rows.append(row)
        if self.ranks.is_main:
            self.say(epoch_summary(row, self.spec.epochs))
        self.epoch, self.step_in_epoch, self.meter = self.epoch + 1, 0, EpochMeter(self.device)
        return row

    def step_row(self, eta: torch.Tensor | None, update: torch.Tensor, train: tuple[float, float],
                 test: tuple[float, float]) -> dict:
        """After one iteration: train metrics on a fixed un-augmented subset, test on the full test set."""
        eta_value = None if eta is None else float(eta)
        update_value = float(update)
        return dict(
            kind="step", epoch=self.epoch, step=self.global_step, train_loss=train[0], train_acc=train[1],
            test_loss=test[0], test_acc=test[1], eta_mean=eta_value, eta_min=eta_value, eta_max=eta_value,
            update_mean=update_value, update_min=update_value, update_max=update_value, lr=self.spec.lr,
            time_s=self.elapsed(),
        )


class Cohort:
    """Runs at the same position that share a network shape and batch size, stepped together: one forward
    and backward pass of their stacked network (agd.jobs.batched) per step, then each run's own optimizer.
    A cohort of one trains its model as it is (data-parallel under torchrun)."""

    def __init__(self, members: list[Member]):
        self.members = members
        first = members[0]
        self.data, self.device, self.ranks = first.data, first.device, first.ranks
        self.batch_size, self.execution = first.spec.batch_size, first.execution
        self.rebuild()

    def rebuild(self) -> None:
        if len(self.members) == 1:
            model = self.members[0].model
            # The forward pass that trains: DDP averages gradients over ranks. Evaluation uses the bare model.
            self.net = distributed.data_parallel(model, self.device, self.ranks, self.execution.sync_batchnorm)
            self.bare = model
        else:
            self.net = self.bare = batched.stacked([m.model for m in self.members])

    def forward(self, net: torch.nn.Module, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each run's logits; runs that share their batch share one input."""
        if len(self.members) == 1:
            return [net(inputs[0])]
        shared = all(x is inputs[0] for x in inputs)
        return batched.split(net(inputs[0] if shared else batched.stack_inputs(inputs)), len(self.members))

    # --- the loop ---

    def run(self, stop: checkpoint.StopRequest, ended: Callable[[Member, str], None] | None = None) -> str:
        """Advance every run to its last epoch. A run that ends (completed, or diverged) leaves the cohort and,
        given `ended`, is handed to it. Returns 'stopped' (by a signal) or, for a cohort of one without
        `ended`, its run's status."""
        while self.members:
            epoch, start = self.members[0].at()
            batches = self.batches(epoch, start)
            progress = tqdm(batches, total=self.members[0].steps_per_epoch, initial=start, leave=False,
                            desc=f"epoch {epoch}", file=sys.stderr, disable=None if self.ranks.is_main else True)
            for pairs in progress:
                if epoch == 0:
                    self.measure_at_init(pairs)
                else:
                    self.train_step(pairs)
                for member in self.members:
                    member.step_in_epoch += 1
                if self.stop_requested(stop):
                    return "stopped"

            tests = self.evaluate(self.data.test_batches(self.execution.test_bs))
            vals = (self.evaluate(self.data.val_batches(self.execution.test_bs)) if self.data.has_validation
                    else [(None, None)] * len(tests))
            for member, test, val in zip(list(self.members), tests, vals):
                row = member.end_epoch(test, val)
                status = "diverged" if not math.isfinite(row["train_loss"]) else \
                    "completed" if member.epoch > member.spec.epochs else None
                if status:
                    self.members.remove(member)
                    if ended is None:
                        return status
                    ended(member, status)
            if not self.members:
                break
            if len(self.members) != len(tests):
                self.rebuild()
            now = time.monotonic()
            first = self.members[0]
            if now - first.last_flush >= METRICS_FLUSH_SECONDS:
                for member in self.members:
                    member.flush_metrics()
            if now - first.last_checkpoint >= self.execution.checkpoint_every:
                self.save_checkpoints()
            if self.stop_requested(stop):
                return "stopped"
        return "completed"

    def save_checkpoints(self) -> None:
        for member in self.members:
            member.save_checkpoint()

    def stop_requested(self, stop: checkpoint.StopRequest) -> bool:
        return self.members[0].stop_requested(stop)

    def batches(self, epoch: int, start: int):
        """Per step, each run's (x, y); runs with one seed draw one stream of batches and share it."""
        streams = {}
        for member in self.members:
            if member.spec.seed not in streams:
                streams[member.spec.seed] = self.data.train_batches(
                    self.batch_size, seed=member.spec.seed, epoch=epoch, start_step=start,
                    shard=(self.ranks.rank, self.ranks.world))
        seeds = list(streams)
        for step_batches in zip(*streams.values()):
            by_seed = dict(zip(seeds, step_batches))
            yield [by_seed[member.spec.seed] for member in self.members]

    def objectives(self, pairs: list) -> tuple[list, list, torch.Tensor]:
        """Each run's logits and batch loss, and the sum to differentiate.

        On several ranks each holds a share of the global batch and DDP averages their gradients,
        so each share's mean loss is weighted by its size: the average is the global batch's gradient.
        """
        logits = self.forward(self.net, [x for x, _ in pairs])
        losses = [member.loss_fn(out, y) for member, out, (_, y) in zip(self.members, logits, pairs)]
        if not self.ranks.active:
            return logits, losses, sum(losses)
        member, (_, y) = self.members[0], pairs[0]
        global_batch = min(self.batch_size, self.data.info.train_size - member.step_in_epoch * self.batch_size)
        return logits, losses, losses[0] * (len(y) * self.ranks.world / global_batch)

    def measure_at_init(self, pairs: list) -> None:
        """Epoch 0: loss, accuracy and, for an optimizer with an eta at init (AGD), its eta on a training batch,
        without updating the weights."""
        measured = [member.entry.eta_at_init for member in self.members]
        if any(measured):
            logits, losses, _ = self.objectives(pairs)
            for member in self.members:
                member.opt.zero_grad(set_to_none=True)
            sum(loss for loss, eta_at_init in zip(losses, measured) if eta_at_init).backward()
        else:
            with torch.no_grad():
                logits = self.forward(self.bare, [x for x, _ in pairs])
                losses = [member.loss_fn(out, y) for member, out, (_, y) in zip(self.members, logits, pairs)]
        for member, eta_at_init, out, loss, (_, y) in zip(self.members, measured, logits, losses, pairs):
            if eta_at_init:
                member.meter.eta.add(eta_at_init(member.opt))
            member.meter.add_batch(loss, out, y)
            member.meter.update.add(torch.zeros((), device=self.device))

    def train_step(self, pairs: list) -> None:
        logits, losses, differentiated = self.objectives(pairs)
        for member in self.members:
            member.opt.zero_grad(set_to_none=True)
        differentiated.backward()
        logged = []
        for member, out, loss, (_, y) in zip(self.members, logits, losses, pairs):
            member.update_size.snapshot()
            member.opt.step()
            member.entry.after_step(member.opt)
            update = member.update_size.measure()
            eta = member.entry.eta(member.opt)
            member.meter.add_batch(loss, out, y)
            member.meter.update.add(update)
            if eta is not None:
                member.meter.eta.add(eta)
            member.global_step += 1
            logged.append((eta, update) if member.global_step <= member.spec.log_steps else None)
        if any(logged):
            trains = self.evaluate(self.data.train_eval_batches(self.execution.test_bs))
            tests = self.evaluate(self.data.test_batches(self.execution.test_bs))
            for member, entry, train, test in zip(self.members, logged, trains, tests):
                if entry:
                    member.rows.append(member.step_row(*entry, train, test))

    def training_inputs(self):
        """A fixed set of un-augmented training images (Schedule-Free recomputes BatchNorm statistics on them)."""
        return (x for x, _ in self.data.train_eval_batches(self.execution.test_bs))

    def evaluate(self, batches) -> list[tuple[float, float]]:
        """Each run's sample-weighted loss and accuracy over `batches`, in eval mode (and at each optimizer's
        evaluation point)."""
        if self.ranks.active:
            batches = (distributed.share(batch, self.ranks) for batch in batches)
        with ExitStack() as evaluating:
            for member in self.members:
                evaluating.enter_context(member.entry.evaluating(member.opt, member.model, self.training_inputs))
            return evaluate(self.bare, lambda x: self.forward(self.bare, [x] * len(self.members)), batches,
                            [member.loss_fn for member in self.members], self.members[0].reduce)


def epoch_summary(row: dict, epochs: int) -> str:
    return summary_line(
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}",
        [f"train loss {row['train_loss']:.4g} acc {100 * row['train_acc']:.2f}%",
         f"test loss {row['test_loss']:.4g} acc {100 * row['test_acc']:.2f}%"],
        row, [f"update {row['update_mean']:.3g}"],
    )


def load_data(spec: ImageRun, execution: ImageExecution, device: torch.device):
    if execution.synthetic_data:
        return synthetic_images(spec.dataset, pad_to=pad_to(spec), batch_size=spec.batch_size, device=device,
                                validation=spec.val_size > 0)
    try:
        return load_dataset(spec.dataset, device=device, data_dir=execution.data_dir, pad_to=pad_to(spec),
                            imagenet_root=execution.imagenet_root, num_workers=execution.num_workers,
                            val_size=spec.val_size)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        raise JobError(str(e)) from e


def inputs(spec: ImageRun, execution: ImageExecution, device: torch.device) -> dict:
    """Beside the spec, what changes an image run's numbers: its data, and the evaluation batch size (the batches
    Schedule-Free recomputes BatchNorm statistics on, and the order test sums are added in)."""
    data = image_data(spec.dataset, data_dir=execution.data_dir, synthetic_data=execution.synthetic_data,
                      imagenet_root=execution.imagenet_root, input_shape=input_spec(spec).input_shape)
    return {"data": data, "test_bs": execution.test_bs}


def new_member(spec: ImageRun, execution: ImageExecution, data, device: torch.device, out: Path,
               ranks: distributed.Ranks = distributed.Ranks(), say: Callable[[str], None] | None = None) -> Member:
    """A run's model, optimizer (its init applied) and loss; the global RNG seeded by the caller decides the init."""
    info = input_spec(spec)
    model = build_model(spec.arch, input_shape=info.input_shape, num_classes=info.num_classes,
                        depth=spec.depth, width=spec.width, bias=spec.bias).to(device)
    optimizer = registry.get(spec.optimizer).build(registry.IMAGE, model, spec)
    loss_fn = build_loss(spec.loss, info.num_classes, spec.beta)
    return Member(spec, execution, data, model, optimizer, loss_fn, device, out, ranks, say)


def build(spec: ImageRun, execution: ImageExecution, device: torch.device, ranks: distributed.Ranks,
          out: Path) -> Member:
    return new_member(spec, execution, load_data(spec, execution, device), device, out, ranks)


def record(training: Member, device: torch.device) -> dict:
    epoch_rows = [r for r in training.rows if r["kind"] == "epoch"]
    final = epoch_rows[-1]
    finite_test = [r for r in epoch_rows if math.isfinite(r["test_acc"])]
    best = max(finite_test, key=lambda r: r["test_acc"]) if finite_test else final
    return {
        "tf32": device.type == "cuda",
        "L": len(training.update_size.weights),
        "num_params": sum(p.numel() for p in training.model.parameters()),
        "steps_per_epoch": training.steps_per_epoch,
        "epochs_completed": final["epoch"],
        "steps": training.global_step,
        "final": {k: final[k] for k in ("train_loss", "train_acc", "test_loss", "test_acc")},
        "best_test_acc": best["test_acc"],
        "best_test_acc_epoch": best["epoch"],
    }


def ended(training: Member, status: str) -> None:
    if status == "diverged":
        training.say(f"diverged at epoch {training.epoch - 1}: the loss is not finite; run recorded as diverged")


def overshoot(spec: ImageRun, state: dict) -> str | None:
    done = state["epoch"] - 1  # the checkpoint's epoch is the one in progress
    return f"{done} epochs, more than --epochs {spec.epochs}" if done > spec.epochs else None


def memory_problem(spec: ImageRun, device: torch.device) -> str | None:
    info = input_spec(spec)
    sizes = f"--depth {spec.depth}" if spec.arch == "fcn" else f"--arch {spec.arch}"
    flags = f"{sizes} --width {spec.width}"
    return memory.memory_problem(memory.image_parameters(spec, info.input_shape, info.num_classes), device, flags)


JOB = Job(prog=ImageRun.program, parse_args=parse_args, overshoot=overshoot, build=build, record=record, ended=ended,
          memory_problem=memory_problem, inputs=inputs)
main = JOB.main


if __name__ == "__main__":
    sys.exit(main())
