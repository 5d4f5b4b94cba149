"""ResNet-50 for ImageNet-sized inputs, torchvision v1.5 style (stride on the 3x3 conv)."""

import torch
from torch import nn

from agd.models.preact_resnet import residual_stages


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU, conv3x3(stride)-BN-ReLU, conv1x1-BN, add the shortcut, ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1, bias: bool = False):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes, affine=bias)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=bias)
        self.bn2 = nn.BatchNorm2d(planes, affine=bias)
        self.conv3 = nn.Conv2d(planes, out_planes, kernel_size=1, bias=bias)
        self.bn3 = nn.BatchNorm2d(out_planes, affine=bias)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != out_planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias),
                nn.BatchNorm2d(out_planes, affine=bias),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50ImageNet(nn.Module):
    """Stem conv7x7/2 + max pool, [3, 4, 6, 3] bottlenecks at width x {1, 2, 4, 8}, global pool, fc."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, bias: bool = False):
        super().__init__()
        # Read by the bias-aware optimizer for its per-stage block scale.
        self.num_blocks = [3, 4, 6, 3]
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=bias)
        self.bn1 = nn.BatchNorm2d(width, affine=bias)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1, self.layer2, self.layer3, self.layer4 = residual_stages(Bottleneck, width, self.num_blocks, bias)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * width * Bottleneck.expansion, num_classes, bias=bias)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's default: the init the paper's SGD baseline trained from (AGD overwrites it).
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d) and module.affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))
