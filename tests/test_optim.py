"""AGD and AGDBias against the paper's formulas, computed independently here in float64."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from agd.optim import AGD, AGDBias, resnet_block_scale


class TinyConvNet(nn.Module):
    def __init__(self, bias: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(4, affine=bias)
        self.conv2 = nn.Conv2d(4, 3, 3, stride=2, padding=1, bias=bias)
        self.fc = nn.Linear(3 * 4 * 4, 5, bias=bias)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def tiny_fcn() -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(12, 7, bias=False), nn.ReLU(), nn.Linear(7, 7, bias=False), nn.ReLU(),
        nn.Linear(7, 3, bias=False),
    )


def backward_on_random_batch(model: nn.Module, input_shape, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((8, *input_shape), generator=g)
    out = model(x)
    y = torch.randn(out.shape, generator=g)
    model.zero_grad()
    ((out - y) ** 2).mean().backward()


def reference_agd_step(weights: list[np.ndarray], grads: list[np.ndarray], gain: float = 1.0):
    """Algorithm 1 written out with explicit loops over every d_out x d_in slice."""

    def slices(t):
        if t.ndim == 2:
            return [(slice(None), slice(None))]
        return [(slice(None), slice(None), i, j) for i in range(t.shape[2]) for j in range(t.shape[3])]

    def target(t):
        kxky = t.shape[2] * t.shape[3] if t.ndim == 4 else 1
        return math.sqrt(t.shape[0] / t.shape[1]) / math.sqrt(kxky)

    L = len(weights)
    G = sum(target(g) * sum(np.linalg.norm(g[s]) for s in slices(g)) for g in grads) / L
    eta = math.log((1 + math.sqrt(1 + 4 * G)) / 2)
    new = []
    for w, g in zip(weights, grads):
        w = w.copy()
        for s in slices(g):
            norm = np.linalg.norm(g[s])
            if norm > 0:
                w[s] -= gain * eta / L * target(g) * g[s] / norm
        new.append(w)
    return new, G, eta


def as_float64(tensors) -> list[np.ndarray]:
    return [t.detach().double().numpy() for t in tensors]


@pytest.mark.parametrize("make_model, input_shape", [(tiny_fcn, (12,)), (TinyConvNet, (2, 8, 8))])
@pytest.mark.parametrize("gain", [1.0, 3.0])
def test_step_matches_algorithm_1(make_model, input_shape, gain):
    torch.manual_seed(0)
    model = make_model()
    opt = AGD(model.named_parameters(), gain=gain)
    opt.init_weights()
    backward_on_random_batch(model, input_shape)
    params = list(model.parameters())
    expected, G, eta = reference_agd_step(as_float64(params), as_float64(p.grad for p in params), gain)

    opt.step()

    assert opt.G == pytest.approx(G, rel=1e-5)
    assert opt.eta == pytest.approx(eta, rel=1e-5)  # eta excludes the gain
    for p, w in zip(params, expected):
        np.testing.assert_allclose(p.detach().double().numpy(), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_model, input_shape", [(tiny_fcn, (12,)), (TinyConvNet, (2, 8, 8))])
def test_a_float64_network_steps_in_float64_to_algorithm_1(make_model, input_shape):
    """G and every slice norm are summed in the gradients' type where it is wider than float32."""
    torch.manual_seed(0)
    model = make_model().double()
    opt = AGD(model.named_parameters())
    opt.init_weights()
    g = torch.Generator().manual_seed(0)
    x = torch.randn((8, *input_shape), generator=g, dtype=torch.float64)
    out = model(x)
    ((out - torch.randn(out.shape, generator=g, dtype=torch.float64)) ** 2).mean().backward()
    params = list(model.parameters())
    expected, G, eta = reference_agd_step(as_float64(params), as_float64(p.grad for p in params))

    opt.step()

    assert opt.G == pytest.approx(G, rel=1e-12) and opt.eta == pytest.approx(eta, rel=1e-12)
    for p, w in zip(params, expected):
        assert p.dtype == torch.float64
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-12, atol=1e-14)


def test_update_norms_follow_the_paper():
    torch.manual_seed(1)
    model = TinyConvNet()
    opt = AGD(model.parameters())
    opt.init_weights()
    backward_on_random_batch(model, (2, 8, 8))
    before = [p.detach().clone() for p in model.parameters()]
    opt.step()
    for p, old in zip(model.parameters(), before):
        # ||dW||_F = (eta / L) sqrt(d_out / d_in) for a matrix and for a whole conv kernel alike.
        expected = opt.eta / opt.L * math.sqrt(p.shape[0] / p.shape[1])
        assert torch.linalg.norm(p - old).item() == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("shape", [(7, 12), (12, 7), (5, 5), (4, 2, 3, 3), (2, 6, 1, 1), (8, 8, 5, 3)])
def test_init_singular_values(shape):
    torch.manual_seed(2)
    W = nn.Parameter(torch.empty(shape))
    AGD([W]).init_weights()
    d_out, d_in = shape[:2]
    kxky = math.prod(shape[2:])
    target = math.sqrt(d_out / d_in) / math.sqrt(kxky)
    slices = W.detach().reshape(d_out, d_in, -1).permute(2, 0, 1)
    for matrix in slices:
        singular_values = torch.linalg.svdvals(matrix.double())
        assert len(singular_values) == min(d_out, d_in)
        torch.testing.assert_close(singular_values, torch.full_like(singular_values, target), rtol=1e-5, atol=1e-6)


def test_init_draws_different_slices():
    torch.manual_seed(3)
    W = nn.Parameter(torch.empty(4, 4, 3, 3))
    AGD([W]).init_weights()
    assert not torch.allclose(W[:, :, 0, 0], W[:, :, 1, 1])


@pytest.mark.parametrize("G", [0.0, 1e-6, 0.3, 1.0, 2.0, 50.0])
def test_eta_for_known_G(G):
    """eta is the positive root of e^eta (e^eta - 1) = G; eta(2) = log 2."""
    W = nn.Parameter(torch.empty(3, 3))
    opt = AGD([W])
    opt.init_weights()
    # A square matrix has s = 1 and L = 1 here, so a gradient of Frobenius norm G gives the summary G.
    W.grad = torch.zeros(3, 3)
    W.grad[0, 0] = G
    opt.step()
    eta = opt.eta
    assert opt.G == pytest.approx(G)
    assert math.exp(eta) * (math.exp(eta) - 1) == pytest.approx(G, rel=1e-6, abs=1e-6)
    assert eta >= 0
    if G == 2.0:
        assert eta == pytest.approx(math.log(2))


def test_zero_gradient_gives_a_finite_step():
    torch.manual_seed(4)
    model = TinyConvNet()
    opt = AGD(model.parameters())
    opt.init_weights()
    backward_on_random_batch(model, (2, 8, 8))
    model.conv2.weight.grad.zero_()
    model.conv1.weight.grad[:, :, 1, 1] = 0  # one zero slice in an otherwise live kernel
    frozen = model.conv2.weight.detach().clone()
    slice_before = model.conv1.weight[:, :, 1, 1].detach().clone()
    opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.equal(model.conv2.weight, frozen)
    assert torch.equal(model.conv1.weight[:, :, 1, 1], slice_before)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert opt.eta == 0.0


def test_state_dict_round_trip():
    torch.manual_seed(5)
    model = tiny_fcn()
    opt = AGD(model.named_parameters(), gain=2.0)
    opt.init_weights()
    twin = tiny_fcn()
    twin.load_state_dict(model.state_dict())
    twin_opt = AGD(twin.named_parameters())  # gain 1 until the state says otherwise
    twin_opt.load_state_dict(opt.state_dict())
    assert twin_opt.param_groups[0]["gain"] == 2.0

    for m in (model, twin):
        backward_on_random_batch(m, (12,), seed=9)
    opt.step()
    twin_opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert torch.equal(a, b)


def test_one_dimensional_parameter_is_refused_by_name():
    model = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2, bias=True))
    with pytest.raises(ValueError, match=r"1\.bias.*AGDBias"):
        AGD(model.named_parameters())
    with pytest.raises(ValueError, match=r"parameter #2"):
        AGD(model.parameters())


def test_closure_and_missing_grads():
    torch.manual_seed(6)
    model = tiny_fcn()
    opt = AGD(model.parameters())
    opt.init_weights()
    x, y = torch.randn(4, 12), torch.randn(4, 3)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() > 0 and opt.eta > 0
    opt.zero_grad(set_to_none=True)
    opt.step()  # no gradients at all: nothing moves
    assert opt.eta == 0.0


# --- AGDBias (the experimental repository's agd_prime) ---


def test_agd_bias_groups_follow_registration_order():
    model = TinyConvNet(bias=True)
    opt = AGDBias(model.named_parameters())
    assert [(g.name, [n for n, _ in g.followers]) for g in opt.groups] == [
        ("conv1.weight", ["conv1.bias", "bn1.weight", "bn1.bias"]),
        ("conv2.weight", ["conv2.bias"]),
        ("fc.weight", ["fc.bias"]),
    ]
    assert opt.L == 3


def test_agd_bias_init_and_step_match_the_formula():
    torch.manual_seed(7)
    model = TinyConvNet(bias=True)
    with torch.no_grad():
        model.bn1.weight.fill_(1.5)
    opt = AGDBias(model.named_parameters())
    opt.init_weights()
    assert model.conv1.bias.abs().sum() == 0 and model.fc.bias.abs().sum() == 0
    assert torch.all(model.bn1.weight == 1.5)  # gammas are not re-initialised

    backward_on_random_batch(model, (2, 8, 8))
    weights = [model.conv1.weight, model.conv2.weight, model.fc.weight]
    expected, G, eta = reference_agd_step(as_float64(weights), as_float64(w.grad for w in weights))
    followers = {
        name: (p.detach().double().clone(), p.grad.double().clone(), owner)
        for owner, names in [(model.conv1.weight, ["conv1.bias", "bn1.weight", "bn1.bias"]),
                             (model.conv2.weight, ["conv2.bias"]), (model.fc.weight, ["fc.bias"])]
        for name, p in model.named_parameters() if name in names
    }
    owner_grad_norms = {id(w): torch.linalg.norm(w.grad.double()).item() for w in weights}

    opt.step()

    assert opt.eta == pytest.approx(eta, rel=1e-5)
    for w, e in zip(weights, expected):
        np.testing.assert_allclose(w.detach().double().numpy(), e, rtol=1e-5, atol=1e-6)
    params = dict(model.named_parameters())
    for name, (before, grad, owner) in followers.items():
        s = math.sqrt(owner.shape[0] / owner.shape[1]) / math.sqrt(math.prod(owner.shape[2:]))
        want = before - eta / opt.L * s * grad / owner_grad_norms[id(owner)]
        torch.testing.assert_close(params[name].detach().double(), want, rtol=1e-5, atol=1e-6)


def test_agd_bias_needs_names_and_a_leading_weight():
    model = TinyConvNet(bias=True)
    with pytest.raises(ValueError, match="named_parameters"):
        AGDBias(model.parameters())
    with pytest.raises(ValueError, match="before any weight"):
        AGDBias([("b", nn.Parameter(torch.zeros(3))), ("w", nn.Parameter(torch.zeros(3, 3)))])


def test_resnet_block_scale_values():
    """The spec's verified singular-value targets for PreAct ResNet-18 with the block scale (§1.11b)."""
    scale = resnet_block_scale([2, 2, 2, 2])
    cases = {
        ("conv1.weight", (64, 3, 3, 3)): 1.5396,
        ("layer1.0.conv1.weight", (64, 64, 3, 3)): 0.2357,
        ("layer2.0.conv1.weight", (128, 64, 3, 3)): 0.3333,
        ("layer2.0.shortcut.0.weight", (128, 64, 1, 1)): 0.7071,
        ("linear.weight", (10, 512)): 0.1398,
    }
    for (name, shape), s in cases.items():
        W = nn.Parameter(torch.empty(shape))
        opt = AGDBias([(name, W)], block_scale=scale)
        assert opt.groups[0].s == pytest.approx(s, abs=1e-4), name
    assert resnet_block_scale([3, 4, 6, 3])("layer3.1.conv2.weight") == pytest.approx(4 ** (1 / 6))
