"""The language-model job: a GPT trained for --max-iters iterations, resumable, writing metrics.csv and run.json.

Reads top to bottom: load the token streams, build the GPT and its optimizer, then iterate: every
--eval-interval iterations a metric row with train and validation loss (and test loss with --test-split; each on a
fixed set of batches), eta and update size over the interval, the learning rate and tokens per second. Arguments,
reuse of --out, resume and the ending are the driver's (agd.jobs.driver).
"""

import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agd.data.identity import text_data
from agd.data.text import TokenData, load_text, prepare_text
from agd.jobs import checkpoint, compilation, distributed, memory, run_dir
from agd.jobs.driver import Job, JobError
from agd.jobs.lm_arguments import LMExecution, autocast_dtype, parse_args
from agd.jobs.metrics import RunningStats, UpdateSize, summary_line
from agd.models.gpt import GPT, GPTConfig
from agd.optim import registry
from agd.plan.specs import EVAL_SEED, LMRun

COLUMNS = [
    "iter", "tokens", "train_loss", "val_loss", "eta_mean", "eta_min", "eta_max",
    "update_mean", "update_min", "update_max", "lr", "tokens_per_s", "time_s",
]
# GPT-2's 50257 BPE tokens are padded to a multiple of 64 for faster matmuls, as nanoGPT does.
BPE_VOCAB_MULTIPLE = 64
DROPOUT_STREAM = 2  # beside the train (0), val (1) and test (3) batch streams of agd.data.text


def metric_columns(spec: LMRun) -> list[str]:
    """COLUMNS, with test_loss after val_loss where the run holds out a test split."""
    if not spec.test_split:
        return COLUMNS
    at = COLUMNS.index("val_loss") + 1
    return [*COLUMNS[:at], "test_loss", *COLUMNS[at:]]


def seed_dropout(seed: int, micro_batch: int) -> None:
    """Dropout masks drawn from (seed, micro-batch index) alone: a resumed run, and any number of
    data-parallel processes, draw the masks of one uninterrupted process."""
    state = np.random.SeedSequence([seed, DROPOUT_STREAM, micro_batch]).generate_state(1, np.uint64)[0]
    torch.manual_seed(int(state) & (2**63 - 1))


def model_vocab_size(data: TokenData) -> int:
    if data.tokenizer == "char":
        return data.vocab_size
    return math.ceil(data.vocab_size / BPE_VOCAB_MULTIPLE) * BPE_VOCAB_MULTIPLE


class Interval:
    """eta and update-size statistics, and the training time, of the iterations since the last row."""

    def __init__(self, device: torch.device):
        self.eta, self.update = RunningStats(device), RunningStats(device)
        self.train_seconds = 0.0
        self.tokens = 0

    def state_dict(self) -> dict:
        return {"eta": self.eta.state_dict(), "update": self.update.state_dict(),
                "train_seconds": self.train_seconds, "tokens": self.tokens}

    def load_state_dict(self, state: dict) -> None:
        self.eta.load_state_dict(state["eta"])
        self.update.load_state_dict(state["update"])
        self.train_seconds, self.tokens = state["train_seconds"], state["tokens"]


class LMTraining(run_dir.RunState):
    """The state of one run between iterations, and the loop that advances it."""

    def __init__(self, spec: LMRun, execution: LMExecution, data: TokenData, model: GPT, optimizer,
                 device: torch.device, out: Path, ranks: distributed.Ranks = distributed.Ranks()):
        super().__init__(out, device, ranks)
        self.spec, self.execution, self.data, self.model, self.opt = spec, execution, data, model, optimizer
        self.columns = metric_columns(spec)
        self.entry = registry.get(spec.optimizer)
        self.autocast = autocast_dtype(execution, device)
        self.compiled = compilation.use_compile(execution.compile, device)
        self.net = distributed.data_parallel(torch.compile(model) if self.compiled else model, device, ranks)
        self.update_size = UpdateSize(p for p in model.parameters() if p.requires_grad)
        self.tokens_per_iter = spec.batch_size * spec.block_size * spec.grad_accum

        self.iteration = 0        # optimizer steps taken
        self.interval = Interval(device)
        self.last_lr: float | None = None  # the rate AdamW applied in the last step

    # --- persistence ---

    def state_dict(self) -> dict:
        return {
            **super().state_dict(), "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(), "iteration": self.iteration, "interval": self.interval.state_dict(),
            "last_lr": self.last_lr,
        }

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.iteration, self.last_lr = state["iteration"], state["last_lr"]
        self.interval.load_state_dict(state["interval"])

    def position(self) -> str:
        return f"iteration {self.iteration}"

    # --- the loop ---

    def run(self, stop: checkpoint.StopRequest) -> str:
        """Advance to --max-iters; returns 'completed', 'diverged' or 'stopped' (by a signal)."""
        if not self.rows:
            self.add_row()
        progress = tqdm(total=self.spec.max_iters, initial=self.iteration, leave=False, desc="iterations",
                        file=sys.stderr, disable=None if self.ranks.is_main else True)
        with progress:
            while self.iteration < self.spec.max_iters:
                began = time.perf_counter()
                self.train_iteration()
                self.interval.train_seconds += time.perf_counter() - began
                progress.update()
                if self.iteration % self.spec.eval_interval == 0 or self.iteration == self.spec.max_iters:
                    row = self.add_row()
                    if not (math.isfinite(row["train_loss"]) and math.isfinite(row["val_loss"])):
                        return "diverged"
                    if time.monotonic() - self.last_checkpoint >= self.execution.checkpoint_every:
                        self.save_checkpoint()
                if self.stop_requested(stop):
                    return "stopped"
        return "completed"

    def forward_context(self):
        if self.autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast)

    def micro_batches(self) -> list[int]:
        """Indices of the micro-batches this rank computes in this iteration (every world-th of them)."""
        first = self.iteration * self.spec.grad_accum
        return list(range(first + self.ranks.rank, first + self.spec.grad_accum, self.ranks.world))

    def train_iteration(self) -> None:
        run = self.spec
        lr = self.entry.set_rate(self.opt, run, self.iteration)
        indices = self.micro_batches()
        for i, index in enumerate(indices):
            x, y = self.data.batch("train", run.batch_size, run.block_size, seed=run.seed, index=index)
            if run.dropout:
                seed_dropout(run.seed, index)
            # DDP all-reduces on the last micro-batch only; each contributes 1/grad_accum of the mean.
            sync = i == len(indices) - 1 or not self.ranks.active
            with (nullcontext() if sync else self.net.no_sync()), self.forward_context():
                _, loss = self.net(x, y)
            (loss * (self.ranks.world / run.grad_accum)).backward()
        if run.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), run.grad_clip)
        self.update_size.snapshot()
        self.opt.step()
        self.entry.after_step(self.opt)
        if lr is not None:
            self.last_lr = lr
        self.interval.update.add(self.update_size.measure())
        eta = self.entry.eta(self.opt)
        if eta is not None:
            self.interval.eta.add(eta)
        self.opt.zero_grad(set_to_none=True)
        self.iteration += 1
        self.interval.tokens += self.tokens_per_iter

    @torch.no_grad()
    def estimate_loss(self, split: str) -> float:
        """Mean loss over the same --eval-iters batches every time (split between the ranks), in eval mode."""
        with self.entry.evaluating(self.opt, self.model):
            return self.mean_loss(split)

    def mean_loss(self, split: str) -> float:
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        for index in range(self.ranks.rank, self.spec.eval_iters, self.ranks.world):
            x, y = self.data.batch(split, self.spec.batch_size, self.spec.block_size, seed=EVAL_SEED, index=index)
            with self.forward_context():
                _, loss = self.model(x, y)
            total += loss.double()
        self.model.train()
        (total,) = distributed.sum_over_ranks(self.ranks, [total], self.device)
        return total / self.spec.eval_iters

    def add_row(self) -> dict:
        eta_mean, eta_min, eta_max = self.interval.eta.summary()
        update_mean, update_min, update_max = self.interval.update.summary()
        seconds = self.interval.train_seconds
        losses = {f"{split}_loss": self.estimate_loss(split) for split in self.data.splits}
        row = dict(
            iter=self.iteration, tokens=self.iteration * self.tokens_per_iter, **losses,
            eta_mean=eta_mean, eta_min=eta_min, eta_max=eta_max,
            update_mean=update_mean, update_min=update_min, update_max=update_max,
            lr=self.last_lr,
            tokens_per_s=self.interval.tokens / seconds if seconds > 0 else None,
            time_s=self.elapsed(),
        )
        self.rows.append(row)
        self.interval = Interval(self.device)
        if self.ranks.is_main:
            print(interval_summary(row, self.spec.max_iters), flush=True)
        self.flush_metrics()
        return row


def interval_summary(row: dict, max_iters: int) -> str:
    after = [] if row["lr"] is None else [f"lr {row['lr']:.3g}"]
    if row["tokens_per_s"] is not None:
        after.append(f"{row['tokens_per_s']:,.0f} tok/s")
    losses = [f"{name.removesuffix('_loss')} loss {value:.4f}" for name, value in row.items() if name.endswith("_loss")]
    return summary_line(f"iter {row['iter']:>{len(str(max_iters))}}/{max_iters}", losses, row, after)


def device_problem(execution: LMExecution, device: torch.device) -> str | None:
    if execution.precision == "bfloat16" and device.type != "cuda":
        return "--precision bfloat16 is for CUDA; this run is on the CPU: use --precision float32 (or auto)"
    return None


def overshoot(spec: LMRun, state: dict) -> str | None:
    if state["iteration"] > spec.max_iters:
        return f"{state['iteration']} iterations, more than --max-iters {spec.max_iters}"
    return None


def precision(execution: LMExecution, device: torch.device) -> str:
    return str(autocast_dtype(execution, device) or torch.float32).removeprefix("torch.")


def inputs(spec: LMRun, execution: LMExecution, device: torch.device) -> dict:
    """Beside the spec, what changes a GPT run's numbers: the text as prepared (its tokens and vocabulary) and
    the precision of the forward pass."""
    return {"data": text_data(prepare_text(spec.text, execution.data_dir, root=execution.text_root)),
            "precision": precision(execution, device)}


def build(spec: LMRun, execution: LMExecution, device: torch.device, ranks: distributed.Ranks,
          out: Path) -> LMTraining:
    try:
        data = load_text(spec.text, execution.data_dir, device=device, root=execution.text_root,
                         test_split=spec.test_split)
    except (RuntimeError, ValueError, FileNotFoundError) as e:
        raise JobError(str(e)) from e
    sizes = {split: len(tokens) for split, tokens in data.splits.items()}
    if spec.block_size >= min(sizes.values()):
        counts = ", ".join(f"{n} {split}" for split, n in sizes.items())
        raise JobError(f"--block-size {spec.block_size} needs longer texts: {spec.text} has {counts} tokens; use a "
                       "smaller --block-size")
    entry = registry.get(spec.optimizer)
    config = GPTConfig(vocab_size=model_vocab_size(data), block_size=spec.block_size, n_layer=spec.n_layer,
                       n_head=spec.n_head, n_embd=spec.n_embd, dropout=spec.dropout, bias=spec.bias,
                       parametrization=entry.parametrization)
    model = GPT(config).to(device)
    training = LMTraining(spec, execution, data, model, entry.build(registry.LM, model, spec), device, out, ranks)
    if ranks.is_main:
        print(f"{spec.text}: {data.train_tokens:,} training tokens, vocabulary {data.vocab_size}, unigram "
              f"entropy {data.unigram_entropy:.4f} nats/token; GPT {model.num_params(False):,} parameters",
              flush=True)
    return training


def record(training: LMTraining, device: torch.device) -> dict:
    final = training.rows[-1]
    finite = [r for r in training.rows if math.isfinite(r["val_loss"])]
    best = min(finite, key=lambda r: r["val_loss"]) if finite else final
    speeds = [r["tokens_per_s"] for r in training.rows if r["tokens_per_s"]]
    return {
        "precision": precision(training.execution, device),
        "compiled": training.compiled,
        "model": training.model.describe(),
        "L": training.entry.depth(training.opt),
        "text": {"name": training.data.name, "vocab_size": training.data.vocab_size,
                 **{f"{split}_tokens": len(tokens) for split, tokens in training.data.splits.items()},
                 "unigram_entropy": training.data.unigram_entropy},
        "iterations": training.iteration,
        "tokens": training.iteration * training.tokens_per_iter,
        "tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
        "final": {k: final[k] for k in ("iter", "train_loss", "val_loss", "test_loss") if k in final},
        "best_val_loss": best["val_loss"],
        "best_val_loss_iter": best["iter"],
    }


def ended(training: LMTraining, status: str) -> None:
    final = training.rows[-1]
    print(f"final validation loss {final['val_loss']:.4f} nats/token after {training.iteration} iterations; "
          f"unigram entropy of the validation text {training.data.unigram_entropy:.4f}")
    if status == "diverged":
        print(f"diverged at iteration {training.iteration}: the loss is not finite; run recorded as diverged")


def memory_problem(spec: LMRun, device: torch.device) -> str | None:
    flags = f"--n-layer {spec.n_layer} --n-embd {spec.n_embd}"
    return memory.memory_problem(memory.lm_parameters(spec), device, flags)


JOB = Job(prog=LMRun.program, parse_args=parse_args, overshoot=overshoot, build=build, record=record,
          memory_problem=memory_problem, device_problem=device_problem, ended=ended, inputs=inputs)
main = JOB.main


if __name__ == "__main__":
    sys.exit(main())
