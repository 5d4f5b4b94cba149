"""The paper's architectures, built by name: FCN, VGG-16, PreAct ResNet-18/50 and ImageNet ResNet-50.

Importing this package imports no torch (agd.models.catalog holds the static facts); the networks load on
first use.
"""

from agd.lazy import lazy_attributes
from agd.models.catalog import ARCHS, default_width

_LAZY = {
    "FCN": "agd.models.fcn",
    "PreActResNet": "agd.models.preact_resnet",
    "preact_resnet18": "agd.models.preact_resnet",
    "preact_resnet50": "agd.models.preact_resnet",
    "ResNet50ImageNet": "agd.models.resnet_imagenet",
    "VGG16": "agd.models.vgg",
    "build_model": "agd.models.build",
}

__all__ = ["ARCHS", *_LAZY, "default_width"]
__getattr__ = lazy_attributes(__name__, _LAZY)
