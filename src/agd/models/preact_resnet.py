"""Pre-activation ResNet-18 / -50 for 32x32 inputs (the CIFAR design of kuangliu/pytorch-cifar)."""

import torch
from torch import nn
from torch.nn import functional as F


def _shortcut(in_planes: int, out_planes: int, stride: int, bias: bool) -> nn.Sequential | None:
    """1x1 projection when the block changes resolution or channels, else None (identity)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias))


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3 twice; the projection shortcut sees the pre-activated input."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, bias: bool = False):
        super().__init__()
        # Registration order matters: AGDBias attaches each 1-D parameter to the weight registered before it.
        self.bn1 = nn.BatchNorm2d(in_planes, affine=bias)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes, affine=bias)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=bias)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (strided), BN-ReLU-conv1x1 to 4x planes."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, bias: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes, affine=bias)
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes, affine=bias)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=bias)
        self.bn3 = nn.BatchNorm2d(planes, affine=bias)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=bias)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = self.conv3(F.relu(self.bn3(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Stem conv3x3 (no BN), four stages at width x {1, 2, 4, 8}, 4x4 average pool, Linear head."""

    def __init__(
        self,
        block: type[PreActBlock] | type[PreActBottleneck],
        num_blocks: list[int],
        in_channels: int,
        num_classes: int,
        width: int = 64,
        bias: bool = False,
    ):
        super().__init__()
        # Read by the bias-aware optimizer for its per-stage block scale.
        self.num_blocks = list(num_blocks)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=bias)
        self.layer1, self.layer2, self.layer3, self.layer4 = residual_stages(block, width, num_blocks, bias)
        self.linear = nn.Linear(8 * width * block.expansion, num_classes, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.flatten(1))


def preact_resnet18(in_channels: int, num_classes: int, width: int = 64, bias: bool = False) -> PreActResNet:
    return PreActResNet(PreActBlock, [2, 2, 2, 2], in_channels, num_classes, width, bias)


def preact_resnet50(in_channels: int, num_classes: int, width: int = 64, bias: bool = False) -> PreActResNet:
    return PreActResNet(PreActBottleneck, [3, 4, 6, 3], in_channels, num_classes, width, bias)


def residual_stages(block, width: int, num_blocks, bias: bool) -> list[nn.Sequential]:
    """The four stages of a ResNet: planes width * 2^i, stride 2 from the second stage on; each stage's
    first block takes the previous stage's output (planes * block.expansion)."""
    in_planes = width
    stages = []
    for index, (blocks, stride) in enumerate(zip(num_blocks, (1, 2, 2, 2))):
        planes = width * 2**index
        layers = []
        for block_stride in [stride] + [1] * (blocks - 1):
            layers.append(block(in_planes, planes, block_stride, bias))
            in_planes = planes * block.expansion
        stages.append(nn.Sequential(*layers))
    return stages
