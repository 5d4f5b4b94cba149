"""VGG-16 for 32x32 inputs: 13 conv-BN-ReLU layers and a single Linear head."""

import torch
from torch import nn

# Channel counts at the base width 64; "M" is a 2x2 max pool.
VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


class VGG16(nn.Module):
    """VGG-16 as used on CIFAR: five pooling stages take 32x32 down to 1x1, then Linear(8*width -> classes)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, bias: bool = False):
        super().__init__()
        self.features = self._make_features(in_channels, width, bias)
        self.classifier = nn.Linear(8 * width, num_classes, bias=bias)

    @staticmethod
    def _make_features(in_channels: int, width: int, bias: bool) -> nn.Sequential:
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            out_channels = item // 64 * width
            layers += [
                nn.Conv2d(channels, out_channels, kernel_size=3, padding=1, bias=bias),
                nn.BatchNorm2d(out_channels, affine=bias),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        layers.append(nn.AvgPool2d(kernel_size=1, stride=1))  # identity; kept to match the original layer list
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
