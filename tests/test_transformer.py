"""The GPT model and AGD's transformer variant against paper_spec §1.11c, computed independently here."""

import math

import pytest
import torch

from agd.models.gpt import GPT, GPTConfig
from agd.optim import TransformerAGD, registry
from agd.optim.agd_transformer import depth_in_L, singular_value_target
from agd.plan.specs import LMRun


def tiny(n_layer=2, bias=False, parametrization="agd", dropout=0.0, vocab=11, block=8) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block, n_layer=n_layer, n_head=2, n_embd=8,
                         dropout=dropout, bias=bias, parametrization=parametrization))


def transformer_optimizer(name: str, model: GPT, **settings):
    """The optimizer the language-model job builds for a run with these settings."""
    return registry.get(name).build(registry.LM, model, LMRun(optimizer=name, **settings).filled())


def tokens(model: GPT, batch=4, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = model.config
    seq = torch.randint(c.vocab_size, (batch, c.block_size + 1), generator=g)
    return seq[:, :-1], seq[:, 1:]


# --- the model ---


def test_gpt2_small_has_its_published_parameter_count():
    """GPT-2 124M: 124,439,808 parameters with biases and the tied 50257-token embedding."""
    with torch.device("meta"):
        model = GPT(GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768, bias=True))
    assert model.num_params(non_embedding=False) == 124_439_808
    assert model.lm_head.weight is model.transformer.wte.weight


def test_parameter_names_follow_nanogpt():
    names = [name for name, _ in tiny(n_layer=1).named_parameters()]
    assert names == [
        "transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
        "transformer.h.0.attn.c_attn.weight", "transformer.h.0.attn.c_proj.weight", "transformer.h.0.ln_2.weight",
        "transformer.h.0.mlp.c_fc.weight", "transformer.h.0.mlp.c_proj.weight", "transformer.ln_f.weight",
    ]


def test_attention_is_causal():
    model = tiny().eval()
    x, _ = tokens(model)
    changed = x.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % model.config.vocab_size
    assert torch.allclose(model(x)[:, :5], model(changed)[:, :5], atol=1e-6)
    assert not torch.allclose(model(x)[:, 5:], model(changed)[:, 5:])


@pytest.mark.parametrize("parametrization, scale", [("agd", lambda d: 1 / d), ("standard", lambda d: 1 / math.sqrt(d))])
def test_attention_scale_written_out(parametrization, scale):
    """The one attention path equals softmax(q k^T * scale) v written out: 1/head_dim for AGD (muP)."""
    model = tiny(parametrization=parametrization).eval()
    attn = model.transformer.h[0].attn
    x = torch.randn(2, 8, 8, generator=torch.Generator().manual_seed(1))
    q, k, v = attn.c_attn(x).split(8, dim=2)
    heads = lambda t: t.view(2, 8, 2, 4).transpose(1, 2)  # noqa: E731
    logits = heads(q) @ heads(k).transpose(-2, -1) * scale(4)
    logits = logits.masked_fill(torch.ones(8, 8, dtype=torch.bool).triu(1), float("-inf"))
    y = (logits.softmax(-1) @ heads(v)).transpose(1, 2).reshape(2, 8, 8)
    assert torch.allclose(attn(x), attn.c_proj(y), atol=1e-6)


@pytest.mark.parametrize("parametrization, token_scale, position_scale", [
    ("agd", 8 / math.sqrt(11), 8 / math.sqrt(8)), ("standard", 1.0, 1.0),
])
def test_embedding_scalings(parametrization, token_scale, position_scale):
    """AGD's model: token embeddings x n_embd/sqrt(vocab), positions x n_embd/sqrt(block_size)."""
    model = tiny(parametrization=parametrization, vocab=11, block=8).eval()
    x, _ = tokens(model)
    seen = []
    model.transformer.drop.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    model(x)
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    expected = wte[x] * token_scale + wpe[torch.arange(8)] * position_scale
    assert torch.allclose(seen[0], expected, atol=1e-6)


def test_loss_at_standard_init_is_near_uniform():
    model = tiny(parametrization="standard", vocab=50, block=8)
    x, y = tokens(model)
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(50)) < 0.1


def test_bad_config_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="multiple of n_head"):
        GPTConfig(vocab_size=10, n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="parametrization"):
        GPTConfig(vocab_size=10, parametrization="mup")
    model = tiny()
    with pytest.raises(ValueError, match="exceeds block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


# --- TransformerAGD: the spec's numbers ---


def test_depth_L_is_2_plus_6_n_layer():
    for n_layer, L in [(6, 38), (12, 74)]:
        opt = TransformerAGD(tiny(n_layer=n_layer).named_parameters(), n_layer=n_layer)
        assert opt.L == L


def test_gpt2_singular_value_targets():
    """spec §1.11c: c_attn 1.0, attn.c_proj 0.2887, c_fc 2.0, mlp.c_proj 0.1443, wpe 1.1547, wte 8.09."""
    h = "transformer.h.3."
    expected = {
        (h + "attn.c_attn.weight", (2304, 768)): 1.0,
        (h + "attn.c_proj.weight", (768, 768)): 0.2887,
        (h + "mlp.c_fc.weight", (3072, 768)): 2.0,
        (h + "mlp.c_proj.weight", (768, 3072)): 0.1443,
        ("transformer.wpe.weight", (1024, 768)): 1.1547,
        ("transformer.wte.weight", (50304, 768)): 8.093,
    }
    for (name, shape), s in expected.items():
        assert singular_value_target(name, shape, n_layer=12) == pytest.approx(s, abs=5e-4), name
    assert singular_value_target("transformer.wte.weight", (65, 384), n_layer=6) == pytest.approx(0.4114, abs=1e-4)
    assert [depth_in_L(h + n) for n in ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight")] == [3, 1, 1]


@pytest.mark.parametrize("bias", [False, True])
def test_init_G_and_update_use_the_same_factors(bias):
    """Each weight's singular values after init, its weight in G and its step size are one number s_W."""
    model = tiny(n_layer=3, bias=bias)
    opt = transformer_optimizer("agd", model, n_layer=3)
    weights = {name: p for name, p in model.named_parameters() if p.ndim == 2}
    s = {}
    for name, p in weights.items():
        sv = torch.linalg.svdvals(p.detach().double())
        assert torch.allclose(sv, sv[0].expand_as(sv), rtol=1e-4), f"{name} is not a scaled orthogonal matrix"
        s[name] = float(sv[0])
        assert s[name] == pytest.approx(singular_value_target(name, tuple(p.shape), 3), rel=1e-4)

    x, y = tokens(model)
    model(x, y)[1].backward()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    grads = {name: p.grad.double().clone() for name, p in weights.items()}
    opt.step()

    L = 2 + 6 * 3
    G = sum(s[name] * float(g.norm()) for name, g in grads.items()) / L
    assert opt.L == L and opt.G == pytest.approx(G, rel=1e-5)
    eta = math.log((1 + math.sqrt(1 + 4 * G)) / 2)
    assert opt.eta == pytest.approx(eta, rel=1e-5)
    for name, p in weights.items():
        step = (before[name] - p.detach()).double()
        expected = eta / L * s[name] * grads[name] / grads[name].norm()
        assert torch.allclose(step, expected, rtol=1e-3, atol=1e-7), name
    for name, p in model.named_parameters():
        if "ln_" in name:
            assert torch.equal(p, before[name]) and not p.requires_grad, f"{name} must stay frozen"
            assert torch.all(p == (1.0 if name.endswith("weight") else 0.0))
        elif p.ndim == 1:  # a bias: started at zero and moved with its weight
            owner = name.replace(".bias", ".weight")
            expected = -eta / L * s[owner] * p.grad.double() / grads[owner].norm()
            assert torch.allclose(p.detach().double(), expected, rtol=1e-3, atol=1e-8), name


def test_agd_trains_a_tiny_gpt_on_a_pattern():
    """A periodic token stream: next-token loss falls far below log(vocab) with no learning rate."""
    model = tiny(n_layer=2, vocab=7, block=8)
    opt = transformer_optimizer("agd", model, n_layer=2)
    stream = torch.arange(200) % 7
    first = None
    for step in range(150):
        starts = torch.randint(0, 190, (16,), generator=torch.Generator().manual_seed(step))
        x = torch.stack([stream[i:i + 8] for i in starts])
        y = torch.stack([stream[i + 1:i + 9] for i in starts])
        loss = model(x, y)[1]
        first = first if first is not None else loss.item()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    assert first > 1.5 and loss.item() < 0.5 * first


def test_adamw_decays_matrices_only():
    model = tiny(bias=True, parametrization="standard")
    opt = transformer_optimizer("adamw", model, n_layer=2, lr=1e-3, weight_decay=0.1, beta2=0.99)
    decayed, plain = opt.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.ndim == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert decayed["betas"] == (0.9, 0.99)


def test_transformer_agd_needs_names():
    model = tiny()
    with pytest.raises(ValueError, match="named_parameters"):
        TransformerAGD(model.parameters(), n_layer=2)
