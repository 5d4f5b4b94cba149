"""The training job: one cell of the paper's grid, resumable, writing metrics.csv and run.json.

Reads top to bottom: build data, model and optimizer, run epoch 0 (measured at init, no update) and the
training epochs, then record the run. Arguments, reuse of --out, resume and the ending are the driver's
(agd.jobs.driver).
"""

import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from agd.data.loading import load_dataset
from agd.jobs import checkpoint, distributed, run_dir
from agd.jobs.arguments import input_spec, pad_to, parse_args
from agd.jobs.driver import Job, JobError
from agd.jobs.metrics import COLUMNS, EpochMeter, UpdateSize, evaluate, summary_line
from agd.losses import build_loss
from agd.models.build import build_model
from agd.optim import registry
from agd.optim._geometry import eta_from_gradient_summary
from agd.plan.specs import ImageRun

METRICS_FLUSH_SECONDS = 5.0


class Training(run_dir.RunState):
    """The state of one run between epochs and steps, and the loop that advances it."""

    columns = COLUMNS

    def __init__(self, args, spec: ImageRun, data, model, optimizer, loss_fn, device: torch.device, out: Path,
                 ranks: distributed.Ranks = distributed.Ranks()):
        super().__init__(out, device, ranks)
        self.args, self.spec, self.data, self.model, self.loss_fn = args, spec, data, model, loss_fn
        self.opt = optimizer
        # The forward pass that trains: DDP averages gradients over ranks. Evaluation uses the bare model.
        self.net = distributed.data_parallel(model, device, ranks)
        self.entry = registry.get(spec.optimizer)
        self.update_size = UpdateSize(model.parameters())
        self.steps_per_epoch = data.steps_per_epoch(args.train_bs)

        self.epoch = 0            # the epoch in progress; 0 is the pass at init
        self.step_in_epoch = 0    # the next batch of that epoch
        self.global_step = 0      # optimizer steps taken
        self.meter = EpochMeter(device)

    # --- persistence ---

    def state_dict(self) -> dict:
        return {
            **super().state_dict(), "identity": self.spec.identity(), "model": self.model.state_dict(),
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

    def reduce(self, values: list) -> list[float]:
        return distributed.sum_over_ranks(self.ranks, values, self.device)

    def evaluate(self, batches) -> tuple[float, float]:
        if self.ranks.active:
            batches = (distributed.share(batch, self.ranks) for batch in batches)
        with self.entry.evaluating(self.opt):
            return evaluate(self.model, batches, self.loss_fn, self.reduce)

    # --- the loop ---

    def run(self, stop: checkpoint.StopRequest) -> str:
        """Advance to the last epoch; returns 'completed', 'diverged' or 'stopped' (by a signal)."""
        while self.epoch <= self.args.epochs:
            batches = self.data.train_batches(
                self.args.train_bs, seed=self.args.seed, epoch=self.epoch, start_step=self.step_in_epoch,
                shard=(self.ranks.rank, self.ranks.world),
            )
            progress = tqdm(batches, total=self.steps_per_epoch, initial=self.step_in_epoch, leave=False,
                            desc=f"epoch {self.epoch}", file=sys.stderr, disable=None if self.ranks.is_main else True)
            for x, y in progress:
                if self.epoch == 0:
                    self.measure_at_init(x, y)
                else:
                    self.train_step(x, y)
                self.step_in_epoch += 1
                if self.stop_requested(stop):
                    return "stopped"

            row = self.epoch_row()
            self.rows.append(row)
            if self.ranks.is_main:
                print(epoch_summary(row, self.args.epochs), flush=True)
            self.epoch, self.step_in_epoch, self.meter = self.epoch + 1, 0, EpochMeter(self.device)
            if not math.isfinite(row["train_loss"]):
                return "diverged"
            now = time.monotonic()
            if now - self.last_flush >= METRICS_FLUSH_SECONDS:
                self.flush_metrics()
            if now - self.last_checkpoint >= self.args.checkpoint_every:
                self.save_checkpoint()
            if self.stop_requested(stop):
                return "stopped"
        return "completed"

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """logits, the batch loss, and the loss to differentiate.

        On several ranks each holds a share of the global batch and DDP averages their gradients,
        so each share's mean loss is weighted by its size: the average is the global batch's gradient.
        """
        logits = self.net(x)
        loss = self.loss_fn(logits, y)
        if not self.ranks.active:
            return logits, loss, loss
        global_batch = min(self.args.train_bs, self.data.info.train_size - self.step_in_epoch * self.args.train_bs)
        return logits, loss, loss * (len(y) * self.ranks.world / global_batch)

    def measure_at_init(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Epoch 0: loss, accuracy and AGD's eta on a training batch, without updating the weights."""
        if self.entry.is_agd:
            logits, loss, differentiated = self.objective(x, y)
            self.opt.zero_grad(set_to_none=True)
            differentiated.backward()
            self.meter.eta.add(eta_from_gradient_summary(self.opt.gradient_summary()))
        else:
            with torch.no_grad():
                logits = self.model(x)
                loss = self.loss_fn(logits, y)
        self.meter.add_batch(loss, logits, y)
        self.meter.update.add(torch.zeros((), device=self.device))

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        logits, loss, differentiated = self.objective(x, y)
        self.opt.zero_grad(set_to_none=True)
        differentiated.backward()
        self.update_size.snapshot()
        self.opt.step()
        self.entry.after_step(self.opt)
        update = self.update_size.measure()
        eta = self.opt.eta_tensor if self.entry.is_agd else None

        self.meter.add_batch(loss, logits, y)
        self.meter.update.add(update)
        if eta is not None:
            self.meter.eta.add(eta)
        self.global_step += 1
        if self.global_step <= self.args.log_steps:
            self.rows.append(self.step_row(eta, update))

    # --- rows ---

    def epoch_row(self) -> dict:
        train_loss, train_acc = self.meter.train_metrics(self.reduce)
        test_loss, test_acc = self.evaluate(self.data.test_batches(self.args.test_bs))
        eta_mean, eta_min, eta_max = self.meter.eta.summary()
        update_mean, update_min, update_max = self.meter.update.summary()
        return dict(
            kind="epoch", epoch=self.epoch, step=self.global_step, train_loss=train_loss, train_acc=train_acc,
            test_loss=test_loss, test_acc=test_acc, eta_mean=eta_mean, eta_min=eta_min, eta_max=eta_max,
            update_mean=update_mean, update_min=update_min, update_max=update_max, lr=self.args.lr,
            time_s=self.elapsed(),
        )

    def step_row(self, eta: torch.Tensor | None, update: torch.Tensor) -> dict:
        """After one iteration: train metrics on a fixed un-augmented subset, test on the full test set."""
        train_loss, train_acc = self.evaluate(self.data.train_eval_batches(self.args.test_bs))
        test_loss, test_acc = self.evaluate(self.data.test_batches(self.args.test_bs))
        eta_value = None if eta is None else float(eta)
        update_value = float(update)
        return dict(
            kind="step", epoch=self.epoch, step=self.global_step, train_loss=train_loss, train_acc=train_acc,
            test_loss=test_loss, test_acc=test_acc, eta_mean=eta_value, eta_min=eta_value, eta_max=eta_value,
            update_mean=update_value, update_min=update_value, update_max=update_value, lr=self.args.lr,
            time_s=self.elapsed(),
        )


def epoch_summary(row: dict, epochs: int) -> str:
    return summary_line(
        f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}",
        [f"train loss {row['train_loss']:.4g} acc {100 * row['train_acc']:.2f}%",
         f"test loss {row['test_loss']:.4g} acc {100 * row['test_acc']:.2f}%"],
        row, [f"update {row['update_mean']:.3g}"],
    )


def build(args, spec: ImageRun, device: torch.device, ranks: distributed.Ranks, out: Path) -> Training:
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    info = input_spec(spec)
    try:
        data = load_dataset(spec.dataset, device=device, data_dir=args.data_dir, pad_to=pad_to(spec),
                            imagenet_root=args.imagenet_root, num_workers=args.num_workers)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        raise JobError(str(e)) from e
    model = build_model(spec.arch, input_shape=info.input_shape, num_classes=info.num_classes,
                        depth=spec.depth, width=spec.width, bias=spec.bias).to(device)
    optimizer = registry.get(spec.optimizer).build(registry.IMAGE, model, spec)
    loss_fn = build_loss(spec.loss, info.num_classes, spec.beta)
    return Training(args, spec, data, model, optimizer, loss_fn, device, out, ranks)


def record(args, training: Training, device: torch.device) -> dict:
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


def ended(args, training: Training, status: str) -> None:
    if status == "diverged":
        print(f"diverged at epoch {training.epoch - 1}: the loss is not finite; run recorded as diverged")


def overshoot(args, state: dict) -> str | None:
    done = state["epoch"] - 1  # the checkpoint's epoch is the one in progress
    return f"{done} epochs, more than --epochs {args.epochs}" if done > args.epochs else None


JOB = Job(prog=ImageRun.program, parse_args=parse_args, overshoot=overshoot, build=build, record=record, ended=ended)
main = JOB.main


if __name__ == "__main__":
    sys.exit(main())
