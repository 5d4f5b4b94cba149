"""Build one of the paper's networks by name."""

from torch import nn

from agd.models.catalog import CIFAR_SIZE, check_arch, default_width
from agd.models.fcn import FCN
from agd.models.preact_resnet import preact_resnet18, preact_resnet50
from agd.models.resnet_imagenet import ResNet50ImageNet
from agd.models.vgg import VGG16


def build_model(
    arch: str,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    depth: int | None = None,
    width: int | None = None,
    bias: bool = False,
) -> nn.Module:
    """Network `arch` for inputs of shape (C, H, W). `depth` (number of Linear layers) is for the FCN only.

    "resnet50" is the CIFAR PreAct ResNet-50 on 32x32 inputs and the ImageNet ResNet-50 on larger ones.
    With bias=False (the paper's setting) every parameter is a weight matrix or conv kernel.
    """
    check_arch(arch)
    channels, height, width_px = input_shape
    width = default_width(arch) if width is None else width
    if arch == "fcn":
        if depth is None:
            raise ValueError("fcn needs depth (the number of Linear layers, >= 2)")
        return FCN(channels * height * width_px, num_classes, depth, width, bias)
    if depth is not None:
        raise ValueError(f"depth is only for fcn; {arch} has a fixed depth, so do not pass depth")
    if arch == "resnet50" and height == width_px and height > CIFAR_SIZE:
        return ResNet50ImageNet(channels, num_classes, width, bias)
    if (height, width_px) != (CIFAR_SIZE, CIFAR_SIZE):
        larger = " (or a square input larger than 32x32 for the ImageNet variant)" if arch == "resnet50" else ""
        raise ValueError(
            f"{arch} needs a 32x32 input{larger}, got {height}x{width_px}; pad smaller images such as MNIST to 32x32"
        )
    if arch == "vgg16":
        return VGG16(channels, num_classes, width, bias)
    if arch == "resnet18":
        return preact_resnet18(channels, num_classes, width, bias)
    return preact_resnet50(channels, num_classes, width, bias)

