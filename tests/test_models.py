"""Architectures against the paper spec: parameter counts, depth L, registration order, forward/backward."""

import math

import pytest
import torch
from torch import nn

from agd.models import ARCHS, FCN, PreActResNet, ResNet50ImageNet, VGG16, build_model, default_width

CIFAR = (3, 32, 32)
IMAGENET = (3, 224, 224)

# Spec section 3.1: FCN parameter counts on CIFAR-10, keyed by (depth, width).
FCN_TABLE = {
    (2, 64): 197_248, (2, 128): 394_496, (2, 256): 788_992, (2, 512): 1_577_984,
    (2, 1024): 3_155_968, (2, 2048): 6_311_936,
    (4, 64): 205_440, (4, 128): 427_264, (4, 256): 920_064, (4, 512): 2_102_272,
    (4, 1024): 5_253_120, (4, 2048): 14_700_544,
    (8, 64): 221_824, (8, 128): 492_800, (8, 256): 1_182_208, (8, 512): 3_150_848,
    (8, 1024): 9_447_424, (8, 2048): 31_477_760,
    (16, 64): 254_592, (16, 128): 623_872, (16, 256): 1_706_496, (16, 512): 5_248_000,
    (16, 1024): 17_836_032, (16, 2048): 65_032_192,
    (32, 64): 320_128, (32, 128): 886_016, (32, 256): 2_755_072, (32, 512): 9_442_304,
    (32, 1024): 34_613_248, (32, 2048): 132_141_056,
}


def vgg16_param_count(num_classes: int) -> int:
    """13 bias-free 3x3 convs plus a 512 -> classes head, from the VGG-16 channel list."""
    channels = [3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    convs = sum(9 * c_in * c_out for c_in, c_out in zip(channels, channels[1:]))
    return convs + 512 * num_classes


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def weight_tensors(model: nn.Module) -> int:
    return sum(p.ndim >= 2 for p in model.parameters())


def assert_no_1d_params(model: nn.Module) -> None:
    assert [name for name, p in model.named_parameters() if p.ndim < 2] == []


@pytest.mark.parametrize(("depth", "width"), sorted(FCN_TABLE))
def test_fcn_param_count_matches_spec_table(depth, width):
    with torch.device("meta"):  # shapes only: the 132 M-parameter cell costs nothing
        model = build_model("fcn", input_shape=CIFAR, num_classes=10, depth=depth, width=width)
    assert count(model) == FCN_TABLE[depth, width]
    assert weight_tensors(model) == depth
    assert_no_1d_params(model)


def test_fcn_on_real_memory_matches_table():
    model = build_model("fcn", input_shape=CIFAR, num_classes=10, depth=8, width=256)
    assert isinstance(model, FCN)
    assert count(model) == 1_182_208


@pytest.mark.parametrize(("num_classes", "millions"), [(10, 14.716), (100, 14.762)])
def test_vgg16_param_count(num_classes, millions):
    model = build_model("vgg16", input_shape=CIFAR, num_classes=num_classes)
    assert isinstance(model, VGG16)
    expected = vgg16_param_count(num_classes)
    assert expected == {10: 14_715_584, 100: 14_761_664}[num_classes]
    assert count(model) == expected
    assert round(expected / 1e6, 3) == millions
    assert weight_tensors(model) == 14
    assert_no_1d_params(model)


@pytest.mark.parametrize(
    ("arch", "input_shape", "num_classes", "millions", "depth_l", "cls"),
    [
        ("resnet18", CIFAR, 10, 11.164, 21, PreActResNet),
        ("resnet50", CIFAR, 10, 23.468, 54, PreActResNet),
        ("resnet50", IMAGENET, 1000, 25.503, 54, ResNet50ImageNet),
    ],
)
def test_resnet_param_count_and_depth(arch, input_shape, num_classes, millions, depth_l, cls):
    model = build_model(arch, input_shape=input_shape, num_classes=num_classes)
    assert isinstance(model, cls)
    assert round(count(model) / 1e6, 3) == millions
    assert weight_tensors(model) == depth_l
    assert_no_1d_params(model)


def test_exact_resnet_counts():
    assert count(build_model("resnet18", input_shape=CIFAR, num_classes=10)) == 11_164_352
    assert count(build_model("resnet50", input_shape=CIFAR, num_classes=10)) == 23_467_712
    assert count(build_model("resnet50", input_shape=IMAGENET, num_classes=1000)) == 25_502_912


def test_resnets_expose_num_blocks():
    assert build_model("resnet18", input_shape=CIFAR, num_classes=10, width=8).num_blocks == [2, 2, 2, 2]
    assert build_model("resnet50", input_shape=CIFAR, num_classes=10, width=8).num_blocks == [3, 4, 6, 3]
    assert build_model("resnet50", input_shape=(3, 64, 64), num_classes=10, width=8).num_blocks == [3, 4, 6, 3]


def test_preact_resnet18_shortcuts_only_where_shape_changes():
    names = [n for n, _ in build_model("resnet18", input_shape=CIFAR, num_classes=10).named_parameters()]
    assert [n for n in names if "shortcut" in n] == [f"layer{i}.0.shortcut.0.weight" for i in (2, 3, 4)]
    assert names[0] == "conv1.weight" and names[-1] == "linear.weight"


def test_imagenet_resnet50_downsamples_every_stage():
    names = [n for n, _ in build_model("resnet50", input_shape=IMAGENET, num_classes=1000).named_parameters()]
    assert [n for n in names if "downsample" in n] == [f"layer{i}.0.downsample.0.weight" for i in (1, 2, 3, 4)]
    assert names[0] == "conv1.weight" and names[-1] == "fc.weight"


@pytest.mark.parametrize(
    ("arch", "input_shape", "depth"),
    [("fcn", CIFAR, 3), ("vgg16", CIFAR, None), ("resnet18", CIFAR, None), ("resnet50", CIFAR, None),
     ("resnet50", (3, 64, 64), None)],
)
def test_bias_true_adds_1d_params(arch, input_shape, depth):
    model = build_model(arch, input_shape=input_shape, num_classes=10, depth=depth, width=8, bias=True)
    assert any(p.ndim == 1 for p in model.parameters())
    no_bias = build_model(arch, input_shape=input_shape, num_classes=10, depth=depth, width=8)
    assert weight_tensors(model) == weight_tensors(no_bias)


def test_preact_resnet18_registration_order_with_bias():
    model = build_model("resnet18", input_shape=CIFAR, num_classes=10, bias=True)
    names = [n for n, _ in model.named_parameters()]
    assert names[:10] == [
        "conv1.weight", "conv1.bias",
        "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.conv1.weight", "layer1.0.conv1.bias",
        "layer1.0.bn2.weight", "layer1.0.bn2.bias", "layer1.0.conv2.weight", "layer1.0.conv2.bias",
    ]
    start = names.index("layer2.0.conv2.bias")
    assert names[start + 1:start + 5] == [
        "layer2.0.shortcut.0.weight", "layer2.0.shortcut.0.bias", "layer2.1.bn1.weight", "layer2.1.bn1.bias",
    ]
    assert names[-2:] == ["linear.weight", "linear.bias"]


def test_preact_bottleneck_registration_order():
    model = build_model("resnet50", input_shape=CIFAR, num_classes=10, width=8)
    names = [n for n, _ in model.named_modules() if n.startswith("layer1.0.")]
    assert names == [
        "layer1.0.bn1", "layer1.0.conv1", "layer1.0.bn2", "layer1.0.conv2", "layer1.0.bn3", "layer1.0.conv3",
        "layer1.0.shortcut", "layer1.0.shortcut.0",
    ]


CASES = [
    ("fcn", 2), ("fcn", 5), ("vgg16", None), ("resnet18", None), ("resnet50", None),
]


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("arch", "depth"), CASES)
def test_forward_backward_small(arch, depth, channels, bias):
    torch.manual_seed(0)
    model = build_model(arch, input_shape=(channels, 32, 32), num_classes=7, depth=depth, width=8, bias=bias)
    check_forward_backward(model, (channels, 32, 32), num_classes=7)


@pytest.mark.parametrize("bias", [False, True])
def test_imagenet_resnet50_forward_backward_small(bias):
    torch.manual_seed(0)
    model = build_model("resnet50", input_shape=(3, 64, 64), num_classes=5, width=8, bias=bias)
    assert isinstance(model, ResNet50ImageNet)
    check_forward_backward(model, (3, 64, 64), num_classes=5)


def check_forward_backward(model: nn.Module, input_shape, num_classes: int) -> None:
    out = model(torch.randn(2, *input_shape))
    assert out.shape == (2, num_classes)
    out.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("depth", [2, 5])
def test_fcn_forward_matches_matrix_products(depth, bias):
    torch.manual_seed(0)
    model = build_model("fcn", input_shape=(1, 4, 5), num_classes=3, depth=depth, width=6, bias=bias)
    x = torch.randn(4, 1, 4, 5)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == depth
    h = x.reshape(4, 20)
    for layer in linears:
        h = h @ layer.weight.T + (layer.bias if bias else 0)
        if layer is not linears[-1]:
            h = math.sqrt(2) * h.clamp(min=0)
    torch.testing.assert_close(model(x), h)


def test_imagenet_resnet50_conv_init_is_kaiming_fan_out():
    torch.manual_seed(0)
    model = build_model("resnet50", input_shape=IMAGENET, num_classes=1000)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 53
    for conv in convs:
        w = conv.weight
        if w.numel() < 10_000:
            continue
        fan_out = w.shape[0] * w.shape[2] * w.shape[3]
        assert w.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.05)
        assert abs(w.mean().item()) < 0.05 * math.sqrt(2 / fan_out)


def test_imagenet_resnet50_with_bias_initialises_affine():
    model = build_model("resnet50", input_shape=(3, 64, 64), num_classes=10, width=8, bias=True)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            assert torch.all(module.bias == 0)
        elif isinstance(module, nn.BatchNorm2d):
            assert module.affine
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_default_width():
    assert default_width("fcn") == 256
    assert [default_width(a) for a in ARCHS if a != "fcn"] == [64, 64, 64]
    model = build_model("fcn", input_shape=(1, 28, 28), num_classes=10, depth=2)
    assert model.initial.weight.shape == (256, 784)


def test_vgg_width_scales_every_layer():
    model = build_model("vgg16", input_shape=(1, 32, 32), num_classes=10, width=8)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 8, 16, 16, 32, 32, 32, 64, 64, 64, 64, 64, 64]
    assert model.classifier.weight.shape == (10, 64)


@pytest.mark.parametrize("depth", [None, 1, 0])
def test_fcn_rejects_missing_or_short_depth(depth):
    with pytest.raises(ValueError, match="depth"):
        build_model("fcn", input_shape=CIFAR, num_classes=10, depth=depth)


@pytest.mark.parametrize("arch", ["vgg16", "resnet18", "resnet50"])
def test_conv_nets_reject_depth(arch):
    with pytest.raises(ValueError, match="depth"):
        build_model(arch, input_shape=CIFAR, num_classes=10, depth=4)


@pytest.mark.parametrize(
    ("arch", "input_shape"),
    [("vgg16", (1, 28, 28)), ("resnet18", (1, 28, 28)), ("vgg16", (3, 64, 64)), ("resnet50", (3, 28, 28)),
     ("resnet50", (3, 64, 48))],
)
def test_conv_nets_reject_wrong_input_size(arch, input_shape):
    with pytest.raises(ValueError, match=f"{arch}.*32x32"):
        build_model(arch, input_shape=input_shape, num_classes=10)


def test_unknown_arch_lists_choices():
    with pytest.raises(ValueError, match="unknown arch 'resnet34'.*fcn, vgg16, resnet18, resnet50"):
        build_model("resnet34", input_shape=CIFAR, num_classes=10)
    with pytest.raises(ValueError, match="unknown arch"):
        default_width("mlp")


@pytest.mark.parametrize("arch", ["resnet18", "vgg16", "resnet50"])
@pytest.mark.parametrize("bias", [False, True])
def test_the_memory_check_counts_a_conv_nets_parameters_exactly(arch, bias):
    """agd.jobs.memory counts from builds at widths 1, 2, 3 on the meta device; the count at another width is
    the real network's."""
    from agd.jobs.memory import image_parameters
    from agd.plan.specs import ImageRun

    spec = ImageRun(arch=arch, dataset="cifar10", width=17, bias=bias, optimizer="agd-bias" if bias else "agd")
    model = build_model(arch, input_shape=(3, 32, 32), num_classes=10, width=17, bias=bias)
    assert image_parameters(spec, (3, 32, 32), 10) == sum(p.numel() for p in model.parameters())
