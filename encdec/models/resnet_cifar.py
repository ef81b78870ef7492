"""The CIFAR-10 ``ResNet50_layer4`` variant (not torchvision's ResNet-50)."""

from __future__ import annotations

import os
from typing import Optional, Union

from torch import nn

from .._registry import ReferenceCheckpoint, register_model
from ..datasets.cifar import CIFAR10_CLASSES
from ..encoders.course import ResNetEncoder, bottleneck_stage
from ..normalization import CIFAR10_MEAN, CIFAR10_STD
from ..weights import remap_keys
from ._base import ImageClassifier

__all__ = ["resnet50_cifar"]

PathLike = Union[str, os.PathLike]

# Reference names -> encdec names. The reference ``layer1`` is stem conv [0], BN [1], ReLU, max pool.
RESNET50_CIFAR_RULES = [
    (r"^layer1\.", "features.stem."),
    (r"^layer(\d)\.(\d+)\.layer\.(\d)\.", lambda m: f"features.stages.{int(m[1]) - 2}.{m[2]}.conv{int(m[3]) + 1}."),
    (r"^layer(\d)\.(\d+)\.(?:downsize|make_equal_channel)\.",
     lambda m: f"features.stages.{int(m[1]) - 2}.{m[2]}.shortcut."),
    (r"^fc\.", "head."),
]


def resnet50_cifar_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference ``ResNet50_layer4`` state dict (``layer3.1.make_equal_channel.0.weight`` ...).

    Example:
        >>> import torch
        >>> list(resnet50_cifar_filter({"layer4.0.layer.2.1.bias": torch.zeros(1)}, None))
        ['features.stages.2.0.conv3.1.bias']
    """
    return remap_keys(state, RESNET50_CIFAR_RULES)


RESNET50_CIFAR_REFERENCE = ReferenceCheckpoint(
    "resnet50_epoch285.ckpt", "CIFAR-10", 10, 32, CIFAR10_MEAN, CIFAR10_STD, "test accuracy ~80-83%",
    class_names=CIFAR10_CLASSES,
)


@register_model(
    task="classification", checkpoint_filter=resnet50_cifar_filter, reference_checkpoints=(RESNET50_CIFAR_REFERENCE,),
)
def resnet50_cifar(
    *, num_classes: int = 10, in_channels: int = 3, weights: Optional[PathLike] = None
) -> ImageClassifier:
    """The CIFAR-10 reference ``ResNet50_layer4`` (about 80-83% test accuracy).

    Course bottlenecks of the CIFAR kind (``Bottleneck(kind="course_cifar")``: BatchNorm and ReLU after every
    convolution including the last and the shortcut, no ReLU after the sum, projection in every block):
    ``layer2`` (3 blocks, the last stride 2), ``layer3`` (4, the last stride 2), ``layer4`` (6 at 1024 channels),
    average pooling and ``Linear(1024, num_classes)``. Fresh weights: Xavier-uniform convolutions and linears.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        weights: A checkpoint (reference keys ``layer1.0.weight`` ... ``fc.bias``, or encdec's), loaded after
            building.

    Example:
        >>> import torch, encdec
        >>> encdec.resnet50_cifar().eval()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    kind = "course_cifar"
    stages = [
        bottleneck_stage([(64, 64, 256, False), (256, 64, 256, False), (256, 64, 256, True)], kind),
        bottleneck_stage([(256, 128, 512, False)] + [(512, 128, 512, False)] * 2 + [(512, 128, 512, True)], kind),
        bottleneck_stage([(512, 256, 1024, False)] + [(1024, 256, 1024, False)] * 5, kind),
    ]
    features = ResNetEncoder(stages, in_channels=in_channels, stem_bias=True, tap_stem="post_pool")
    model = ImageClassifier(features, nn.Linear(1024, num_classes), num_classes=num_classes, in_channels=in_channels)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model
