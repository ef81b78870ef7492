"""VGG16 for CIFAR-10 (configuration "D" with a BatchNorm classifier)."""

from __future__ import annotations

import math
import os
from typing import List, Optional, Union

from torch import nn

from .._registry import ReferenceCheckpoint, register_model
from ..datasets.cifar import CIFAR10_CLASSES
from ..normalization import CIFAR10_MEAN, CIFAR10_STD
from ..weights import remap_keys
from ._base import ImageClassifier

__all__ = ["VGG16_CONFIG", "vgg_features", "vgg16_cifar"]

PathLike = Union[str, os.PathLike]

VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg_features(config=VGG16_CONFIG, in_channels: int = 3) -> nn.Sequential:
    """VGG's convolutional part: 3x3 convolutions with bias and ReLU, ``"M"`` for a 2x2 max pool.

    Indices follow the reference (ReLU and pool layers take indices too): the convolutions sit at 0, 2, 5, 7, ...

    Example:
        >>> [i for i, m in enumerate(vgg_features()) if isinstance(m, nn.Conv2d)][:4]
        [0, 2, 5, 7]
    """
    layers: List[nn.Module] = []
    channels = in_channels
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
    return nn.Sequential(*layers)


def vgg_filter(state: dict, model: nn.Module) -> dict:
    """Rename the reference ``classifier.*`` keys to ``head.*`` (``features.*`` keep their names).

    Example:
        >>> import torch
        >>> list(vgg_filter({"classifier.5.bias": torch.zeros(1)}, None))
        ['head.5.bias']
    """
    return remap_keys(state, [(r"^classifier\.", "head.")])


VGG16_REFERENCE = ReferenceCheckpoint(
    "vgg16_epoch250.ckpt", "CIFAR-10", 10, 32, CIFAR10_MEAN, CIFAR10_STD, "test accuracy ~85-86%",
    class_names=CIFAR10_CLASSES,
)


@register_model(
    task="classification", checkpoint_filter=vgg_filter, reference_checkpoints=(VGG16_REFERENCE,),
)
def vgg16_cifar(*, num_classes: int = 10, in_channels: int = 3, weights: Optional[PathLike] = None) -> ImageClassifier:
    """VGG16 for CIFAR-10, as the reference trained it (about 85-86% test accuracy).

    13 biased 3x3 convolutions with ReLU and 5 max pools (no BatchNorm in ``features``), then
    ``Dropout, Linear(512, 512), BatchNorm1d, ReLU, Dropout, Linear(512, num_classes)``. Fresh convolution
    weights are drawn from N(0, 2 / (k * k * out_channels)) with zero bias, as the reference initialises them.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        weights: A checkpoint (reference keys ``features.0.weight`` ... ``classifier.5.bias``, or encdec's),
            loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.vgg16_cifar().eval()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    features = vgg_features(VGG16_CONFIG, in_channels)
    for m in features.modules():
        if isinstance(m, nn.Conv2d):
            fan = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan))
            nn.init.zeros_(m.bias)
    head = nn.Sequential(
        nn.Dropout(0.5), nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(512, num_classes),
    )
    return ImageClassifier(features, head, num_classes=num_classes, in_channels=in_channels)
