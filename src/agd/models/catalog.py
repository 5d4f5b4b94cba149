"""Static facts about the architectures and objectives: names, base widths; nothing is built here (no torch)."""

ARCHS = ("fcn", "vgg16", "resnet18", "resnet50")
CONV_ARCHS = ("vgg16", "resnet18", "resnet50")
CIFAR_ONLY = ("vgg16", "resnet18")  # built for 32x32 inputs; resnet50 also has an ImageNet variant
LOSSES = ("mse", "xent")
CIFAR_SIZE = 32  # the side of the inputs the CIFAR nets are built for
DEFAULT_FCN_DEPTH = 10
LABELS = {"fcn": "FCN", "resnet18": "ResNet-18", "resnet50": "ResNet-50", "vgg16": "VGG-16"}  # as the paper names them


def check_arch(arch: str) -> None:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")


def default_width(arch: str) -> int:
    """The paper's base width: 256 hidden units for the FCN, 64 stem channels for the conv nets."""
    check_arch(arch)
    return 256 if arch == "fcn" else 64
