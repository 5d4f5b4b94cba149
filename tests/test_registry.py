"""The optimizer registry: one entry per optimizer, read by the jobs' command lines, the config schema, the run
tables and the figures."""

import pytest
import torch

from agd.jobs import arguments, lm_arguments
from agd.models import build_model
from agd.optim import AGD, AGDBias, TransformerAGD, registry
from agd.plan import config as config_schema
from agd.plan.specs import ImageRun, LMRun
from agd.figures.style import OPTIMIZER_COLORS, OPTIMIZER_LABELS


def choices(parser, flag: str) -> tuple:
    return tuple(next(a for a in parser._actions if flag in a.option_strings).choices)


def test_families_and_learning_rates():
    assert registry.names(family=registry.AGD) == ("agd", "agd-bias")
    assert registry.names(family=registry.TUNED) == ("adam", "sgd", "muon", "sf-adamw-tuned", "adamw")
    assert registry.names(family=registry.LR_FREE) == ("prodigy", "dadapt-adam", "dog")
    assert registry.names(family=registry.SELF_TUNING) == ("sf-adamw",)
    assert [registry.get(name).tuned for name in registry.names()] == [False, False, True, True, True, False, False,
                                                                          False, False, True, True]
    assert registry.is_agd("agd-bias") and not registry.is_agd("adamw")
    with pytest.raises(ValueError, match="unknown optimizer 'lion'.*agd, agd-bias"):
        registry.get("lion")


def test_command_lines_and_schema_offer_the_registry():
    assert choices(arguments.build_parser(), "--optimizer") == registry.names(registry.IMAGE) == (
        "agd", "agd-bias", "adam", "sgd", "muon", "prodigy", "dadapt-adam", "dog", "sf-adamw", "sf-adamw-tuned")
    assert choices(lm_arguments.build_parser(), "--optimizer") == registry.names(registry.LM) == (
        "agd", "muon", "prodigy", "dadapt-adam", "dog", "sf-adamw", "sf-adamw-tuned", "adamw")
    defs = config_schema.schema()["$defs"]
    image = defs["panel"]["properties"]["optimizers"]["properties"]
    assert image["agd"] == image["prodigy"] == {"type": "null"} and image["adam"] == image["muon"] == {
        "$ref": "#/$defs/lr_grid"}
    assert set(image) == set(registry.names(registry.IMAGE))
    lm = defs["transformer_panel"]["properties"]["optimizers"]["properties"]
    assert lm["agd"] == {"type": "null"} and set(lm["adamw"]["properties"]) == set(registry.get("adamw").settings)


def test_figures_draw_each_optimizer_in_its_registry_colour():
    assert OPTIMIZER_COLORS == {name: registry.get(name).color for name in registry.names()}
    assert OPTIMIZER_LABELS["adamw"] == "AdamW" and OPTIMIZER_COLORS["agd"] == "#2ca02c"


def test_builders_apply_each_optimizers_init():
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 4, 4), num_classes=3, depth=3, width=8)
    before = [p.detach().clone() for p in model.parameters()]
    adam = registry.get("adam").build(registry.IMAGE, model, ImageRun(optimizer="adam", lr=1e-4))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["lr"] == 1e-4
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # PyTorch's default init kept
    sgd = registry.get("sgd").build(registry.IMAGE, model, ImageRun(optimizer="sgd").filled())
    assert sgd.param_groups[0]["lr"] == 0.1  # the registry's default rate
    agd = registry.get("agd").build(registry.IMAGE, model, ImageRun(gain=2.0))
    assert isinstance(agd, AGD) and not isinstance(agd, AGDBias) and agd.param_groups[0]["gain"] == 2.0
    assert not torch.equal(before[0], next(model.parameters()))  # orthogonal init applied
    assert registry.get("agd").init != registry.get("adam").init
    with pytest.raises(ValueError, match="does not train lm runs"):
        registry.get("sgd").build(registry.LM, model, LMRun())


def test_transformer_agd_from_the_registry_freezes_layernorms():
    from agd.models.gpt import GPT, GPTConfig

    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=8, parametrization="agd"))
    opt = registry.get("agd").build(registry.LM, gpt, LMRun(n_layer=2))
    assert isinstance(opt, TransformerAGD) and opt.L == 2 + 6 * 2
    assert all(not p.requires_grad for name, p in gpt.named_parameters() if "ln_" in name)


def test_hooks_default_to_nothing():
    entry = registry.get("adam")
    with entry.evaluating(object()):
        pass
    assert entry.after_step(object()) is None
    assert entry.eta(object()) is None and entry.depth(object()) is None and entry.eta_at_init is None
    assert entry.set_rate(object(), ImageRun(), 0) is None and not entry.scheduled
    assert entry.parametrization == "standard"


@pytest.mark.parametrize("name", registry.names(family=registry.AGD))
def test_agd_hooks_give_eta_at_init_the_first_step_and_its_depth(name):
    """eta at init is the rate the first step then takes from the same gradients; depth is the L of the update."""
    torch.manual_seed(0)
    bias = registry.get(name).trains_bias
    model = build_model("fcn", input_shape=(1, 4, 4), num_classes=3, depth=3, width=8, bias=bias)
    entry = registry.get(name)
    opt = entry.build(registry.IMAGE, model, ImageRun(optimizer=name, bias=bias))
    model(torch.randn(5, 1, 4, 4)).square().mean().backward()
    at_init = entry.eta_at_init(opt)
    assert entry.eta(opt) is None  # no step yet
    opt.step()
    assert torch.equal(at_init, entry.eta(opt)) and 0 < float(at_init) < 1
    assert entry.depth(opt) == opt.L == 3


def test_the_schedule_hook_sets_every_groups_rate():
    from agd.models.gpt import GPT, GPTConfig
    from agd.optim.schedule import warmup_cosine

    gpt = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    entry = registry.get("adamw")
    run = LMRun(optimizer="adamw", max_iters=500).filled()
    opt = entry.build(registry.LM, gpt, run)
    assert entry.scheduled and entry.parametrization == "standard" == registry.get("agd-bias").parametrization
    assert registry.get("agd").parametrization == "agd"
    for iteration in (0, 10, 99, 300, 600):
        rate = entry.set_rate(opt, run, iteration)
        assert rate == warmup_cosine(iteration, lr=1e-3, min_lr=1e-4, warmup_iters=100, decay_iters=500)
        assert {group["lr"] for group in opt.param_groups} == {rate}


def test_every_peer_cites_how_its_authors_run_it():
    for name in ("muon", "prodigy", "dadapt-adam", "dog", "sf-adamw", "sf-adamw-tuned"):
        assert '"' in registry.get(name).usage or "/" in registry.get(name).usage, name


def test_schedules_that_span_the_run_make_its_length_part_of_the_run():
    ten, twenty = (ImageRun(optimizer="prodigy", epochs=e).filled() for e in (10, 20))
    assert (ten.horizon, twenty.horizon) == (10, 20) and ten.identity() != twenty.identity()
    assert ten.run_id().endswith("/prodigy-lr1e+00-h10/seed0") and ten.d_coef == 1.0
    assert ImageRun(optimizer="adam", epochs=10).filled().horizon is None
    assert "drop --horizon" in ImageRun(optimizer="adam", horizon=5).problem()
    assert "--d-coef is a setting of prodigy" in ImageRun(optimizer="adam", d_coef=2.0).problem()


def test_schedule_free_runs_in_its_algoperf_configuration():
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 28, 28), num_classes=10, depth=3, width=8)
    run = ImageRun(dataset="mnist5k", optimizer="sf-adamw", epochs=10, batch_size=100, val_size=500).filled()
    opt = registry.get("sf-adamw").build(registry.IMAGE, model, run)
    group = opt.param_groups[0]
    assert group["lr"] == 0.0025 and group["betas"] == (0.9, 0.9955159689799007)
    assert group["weight_decay"] == 0.08121616522670176 and group["r"] == 0.75
    assert group["warmup_steps"] == int(0.015 * 10 * 35)  # 2% x 0.75 of 10 epochs of 3500 / 100 batches


def test_prodigy_anneals_its_rate_to_zero_over_the_run():
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 4, 4), num_classes=3, depth=3, width=8)
    run = ImageRun(dataset="mnist5k", optimizer="prodigy", epochs=1, batch_size=2000).filled()  # 2 steps
    opt = registry.get("prodigy").build(registry.IMAGE, model, run)
    x, y = torch.randn(8, 1, 4, 4), torch.randint(0, 3, (8,))
    rates = []
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(0.5) and rates[1] == pytest.approx(0.0, abs=1e-12)
    state = opt.state_dict()
    assert state["t"] == 2


def test_schedule_free_evaluates_at_its_evaluation_point_with_batchnorm_statistics_recomputed_there():
    """Its README: "call optimizer.eval() before evaluating"; with BatchNorm, the running statistics are those of
    the evaluation point, recomputed on training batches (facebookresearch/schedule_free issue 60)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2, bias=False))
    run = ImageRun(dataset="mnist5k", optimizer="sf-adamw", epochs=1, batch_size=100, val_size=500).filled()
    entry = registry.get("sf-adamw")
    opt = entry.build(registry.IMAGE, model, run)
    batches = [torch.randn(16, 4) for _ in range(3)]
    for x in batches * 4:
        model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
    y_point = [p.detach().clone() for p in model.parameters()]

    with entry.evaluating(opt, model, lambda: batches):
        assert all(not group["train_mode"] for group in opt.param_groups)
        x_point = [p.detach().clone() for p in model.parameters()]
        assert any(not torch.equal(a, b) for a, b in zip(x_point, y_point))  # moved to the evaluation point
        features = [x @ model[0].weight.T for x in batches]  # BatchNorm's inputs at that point, batch by batch
        assert torch.allclose(model[1].running_mean, torch.stack([f.mean(0) for f in features]).mean(0), atol=1e-6)
        assert torch.allclose(model[1].running_var, torch.stack([f.var(0) for f in features]).mean(0), atol=1e-6)

    assert all(group["train_mode"] for group in opt.param_groups)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), y_point))  # back where training goes on
