"""The peers on a GPT: every optimizer of the language-model job trains one, Muon splits it as its authors do, the
averaged and Schedule-Free evaluation points are what is evaluated, and a held-out test split of the text."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from agd.data.synthetic import made_up_text
from agd.data.text import load_text
from agd.jobs import checkpoint, distributed, train_lm
from agd.jobs.lm_arguments import parse_args
from agd.models.gpt import GPT, GPTConfig
from agd.optim import registry
from agd.optim.peers import FlatMuon
from agd.plan.specs import LMRun

VOLATILE = ["time_s", "tokens_per_s"]
SHORT = {"adamw": ("--warmup-iters", "1")}  # its default warmup is longer than these runs


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "input.txt"
    path.write_text(made_up_text())
    return path


def tiny_run(text_file: Path, tmp_path: Path, out: str, *extra: str) -> list[str]:
    return ["--text", "shakespeare_char", "--text-root", str(text_file), "--data-dir", str(tmp_path / "data"),
            "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--block-size", "16", "--batch-size", "4",
            "--eval-iters", "2", "--dropout", "0", "--device", "cpu", "--threads", "1", "--out", str(tmp_path / out),
            *extra]


def train(text_file: Path, tmp_path: Path, out: str, *extra: str) -> pd.DataFrame:
    assert train_lm.main(tiny_run(text_file, tmp_path, out, *extra)) == 0
    return pd.read_csv(tmp_path / out / "metrics.csv")


@pytest.mark.parametrize("name", registry.names(registry.LM))
def test_every_optimizer_of_the_job_trains_a_gpt(tmp_path, text_file, name):
    m = train(text_file, tmp_path, name, "--optimizer", name, "--max-iters", "4", "--eval-interval", "2",
              *SHORT.get(name, ()))
    assert list(m.columns) == train_lm.COLUMNS and m["iter"].tolist() == [0, 2, 4]
    assert m[["train_loss", "val_loss"]].map(math.isfinite).all().all()
    assert (m["update_mean"].iloc[1:] > 0).all()
    record = json.loads((tmp_path / name / "run.json").read_text())
    assert record["status"] == "completed" and record["args"]["optimizer"] == name


def test_muon_takes_a_gpts_hidden_matrices_and_adamw_the_rest():
    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, bias=True))
    opt = registry.get("muon").build(registry.LM, gpt, LMRun(optimizer="muon").filled())
    muon, adamw = opt.optimizers
    assert isinstance(muon, FlatMuon) and isinstance(adamw, torch.optim.AdamW)
    names = {id(p): name for name, p in gpt.named_parameters()}
    by_muon = {names[id(p)] for p, _ in muon.pairs}
    assert by_muon == {f"transformer.h.{i}.{layer}.weight" for i in range(2)
                       for layer in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    by_adamw = {names[id(p)] for group in adamw.param_groups for p in group["params"]}
    assert by_adamw == set(names.values()) - by_muon
    assert {"transformer.wte.weight", "transformer.wpe.weight", "transformer.ln_f.weight"} <= by_adamw
    assert gpt.lm_head.weight is gpt.transformer.wte.weight  # the head is the token embedding: AdamW's


def trained(text_file: Path, tmp_path: Path, optimizer: str) -> tuple[train_lm.LMTraining, pd.DataFrame]:
    """A finished run's last state, rebuilt from its kept checkpoint, and its metrics (evaluated in the same process
    on the same batches, so the losses below are the logged ones to the last bits)."""
    argv = tiny_run(text_file, tmp_path, optimizer, "--optimizer", optimizer, "--max-iters", "6",
                    "--eval-interval", "6", "--keep-checkpoint")
    assert train_lm.main(argv) == 0
    spec, execution = parse_args(argv)
    out = tmp_path / optimizer
    training = train_lm.build(spec, execution, torch.device("cpu"), distributed.Ranks(), out)
    training.load_state_dict(checkpoint.load(out, torch.device("cpu")))
    return training, pd.read_csv(out / "metrics.csv")


def test_schedule_free_is_evaluated_at_its_evaluation_point(tmp_path, text_file):
    training, m = trained(text_file, tmp_path, "sf-adamw")
    at_y = training.mean_loss("val")  # where its gradients are taken (train mode)
    training.opt.eval()
    at_x = training.mean_loss("val")
    assert float(at_x) == pytest.approx(m["val_loss"].iloc[-1], rel=1e-12)
    assert abs(float(at_y) - float(at_x)) > 1e-4


def test_dog_is_evaluated_at_its_averaged_iterate(tmp_path, text_file):
    training, m = trained(text_file, tmp_path, "dog")
    last = training.mean_loss("val")
    training.model.load_state_dict(training.opt.averager.averaged_model.state_dict())
    averaged = training.mean_loss("val")
    assert float(averaged) == pytest.approx(m["val_loss"].iloc[-1], rel=1e-12)
    assert float(last) != pytest.approx(float(averaged), rel=1e-9)  # DoG's first steps are small


def test_the_test_split_is_the_second_half_of_the_validation_tokens(tmp_path, text_file):
    whole = load_text("shakespeare_char", tmp_path, device="cpu", root=text_file)
    held = load_text("shakespeare_char", tmp_path, device="cpu", root=text_file, test_split=True)
    val, test = held.splits["val"], held.splits["test"]
    assert len(val) == whole.val_tokens // 2 and held.test_tokens == whole.val_tokens - len(val)
    assert torch.equal(torch.cat([val, test]), whole.splits["val"])
    assert torch.equal(held.splits["train"], whole.splits["train"])
    for split, tokens in (("val", val), ("test", test)):
        windows = tokens.unfold(0, 17, 1)  # every window of a block and its next token
        x, y = held.batch(split, 8, 16, seed=5, index=0)
        assert all((windows == torch.cat([row_x, row_y[-1:]])).all(1).any() for row_x, row_y in zip(x, y))
    assert not torch.equal(held.batch("val", 8, 16, seed=5, index=0)[0], held.batch("test", 8, 16, seed=5, index=0)[0])
    with pytest.raises(ValueError, match="split"):
        whole.batch("test", 4, 8, seed=0, index=0)


def test_metrics_hold_a_test_loss_only_with_the_test_split(tmp_path, text_file):
    args = ("--max-iters", "2", "--eval-interval", "2")
    plain, held = train(text_file, tmp_path, "plain", *args), train(text_file, tmp_path, "held", *args, "--test-split")
    assert list(plain.columns) == train_lm.COLUMNS
    at = train_lm.COLUMNS.index("val_loss") + 1
    assert list(held.columns) == [*train_lm.COLUMNS[:at], "test_loss", *train_lm.COLUMNS[at:]]
    assert held["test_loss"].map(math.isfinite).all() and (held["test_loss"] != held["val_loss"]).all()
    assert (held["train_loss"] == plain["train_loss"]).all()  # the same training: only the evaluation differs
    record = json.loads((tmp_path / "held" / "run.json").read_text())
    assert record["final"]["test_loss"] == pytest.approx(held["test_loss"].iloc[-1])
    assert record["text"]["test_tokens"] + record["text"]["val_tokens"] == json.loads(
        (tmp_path / "plain" / "run.json").read_text())["text"]["val_tokens"]
    assert "test_loss" not in json.loads((tmp_path / "plain" / "run.json").read_text())["final"]


def test_new_settings_name_their_runs_and_leave_old_runs_as_they_were():
    assert LMRun().identity() == LMRun(test_split=False).identity() and "test_split" not in LMRun().identity()
    assert LMRun(test_split=True).run_id() == "gpt-python_docs_char/l6-h6-e384-b256-drop0.2-test/bs64-ga1/agd/seed0"
    prodigy = LMRun(optimizer="prodigy", max_iters=300).filled()
    assert (prodigy.horizon, prodigy.d_coef, prodigy.lr) == (300, 1.0, 1.0) and prodigy.problem() is None
    assert prodigy.run_id().endswith("/prodigy-lr1e+00-h300/seed0")
    assert registry.training_steps(prodigy) == 300 and registry.training_steps(LMRun(max_iters=9, horizon=20)) == 20
    assert LMRun(optimizer="sf-adamw").filled().horizon == 5000 and LMRun(optimizer="dog").filled().horizon is None
    assert "drop --horizon" in LMRun(optimizer="adamw", horizon=5).problem()
    assert "--d-coef is a setting of prodigy" in LMRun(optimizer="dog", d_coef=2.0).problem()


def test_a_prodigy_run_extended_from_its_checkpoint_takes_the_steps_of_a_straight_one(tmp_path, text_file):
    """Its cosine spans --horizon: the first attempt stops half way along it and the second goes on from there."""
    common = ("--optimizer", "prodigy", "--horizon", "8", "--eval-interval", "2", "--keep-checkpoint")
    train(text_file, tmp_path, "short", "--max-iters", "4", *common)
    extended = train(text_file, tmp_path, "short", "--max-iters", "8", *common)
    straight = train(text_file, tmp_path, "straight", "--max-iters", "8", *common)
    pd.testing.assert_frame_equal(extended.drop(columns=VOLATILE), straight.drop(columns=VOLATILE))
