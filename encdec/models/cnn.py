"""The dog-image classifiers: a five-block CNN and a torchvision ResNet-18 with a new head."""

from __future__ import annotations

import os
from typing import Optional, Union

from torch import nn

from .._registry import ReferenceCheckpoint, register_model
from ..blocks import ConvBNAct
from ..encoders.course import load_torchvision_encoder, torchvision_resnet_encoder, torchvision_resnet_rules
from ..normalization import IMAGENET_MEAN, IMAGENET_STD
from ..weights import remap_keys
from ._base import ImageClassifier

__all__ = ["custom_cnn", "resnet18_classifier"]

PathLike = Union[str, os.PathLike]


def custom_cnn_filter(state: dict, model: nn.Module) -> dict:
    """Rename the reference ``block1..5`` / ``fc1`` / ``fc2`` keys.

    Example:
        >>> import torch
        >>> list(custom_cnn_filter({"block5.1.running_var": torch.zeros(1), "fc2.bias": torch.zeros(1)}, None))
        ['features.4.1.running_var', 'head.2.bias']
    """
    rules = [
        (r"^block(\d)\.", lambda m: f"features.{int(m[1]) - 1}."),
        (r"^fc1\.", "head.0."),
        (r"^fc2\.", "head.2."),
    ]
    return remap_keys(state, rules)


CUSTOM_CNN_REFERENCE = ReferenceCheckpoint(
    "custom_cnn.pth", "dog images", 4, 32,
)


@register_model(
    task="classification", checkpoint_filter=custom_cnn_filter, reference_checkpoints=(CUSTOM_CNN_REFERENCE,),
)
def custom_cnn(*, num_classes: int = 4, in_channels: int = 3, weights: Optional[PathLike] = None) -> ImageClassifier:
    """The dog-image reference CNN: five Conv-BN-ReLU-AvgPool blocks (32 to 512 channels) and two linears.

    The reference flattens a 1x1 map at 32x32; encdec adds global average pooling, which is the identity
    there, so other sizes work too.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        weights: A checkpoint (reference keys ``block1.0.weight`` ... ``fc2.bias``, or encdec's), loaded after
            building.

    Example:
        >>> import torch, encdec
        >>> encdec.custom_cnn(num_classes=3).eval()(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """
    widths = (in_channels, 32, 64, 128, 256, 512)
    features = nn.Sequential(*(
        nn.Sequential(*ConvBNAct(i, o, 3), nn.AvgPool2d(2, 2)) for i, o in zip(widths[:-1], widths[1:])
    ))
    head = nn.Sequential(nn.Linear(512, 256), nn.ReLU(inplace=True), nn.Linear(256, num_classes))
    return ImageClassifier(features, head, num_classes=num_classes, in_channels=in_channels)


def resnet18_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference ``self.resnet18`` wrapper's keys (or a bare torchvision ResNet-18 state dict).

    Example:
        >>> import torch
        >>> list(resnet18_filter({"resnet18.layer1.0.bn2.weight": torch.zeros(1)}, None))
        ['features.stages.0.0.conv2.1.weight']
    """
    state = {k[len("resnet18."):] if k.startswith("resnet18.") else k: v for k, v in state.items()}
    return remap_keys(state, torchvision_resnet_rules("features.") + [(r"^fc\.", "head.")])


RESNET18_IMAGENET = ReferenceCheckpoint(
    "resnet18-f37072fd.pth", "ImageNet (torchvision), as encoder_weights", 1000, 224, IMAGENET_MEAN, IMAGENET_STD,
)


@register_model(
    task="classification", checkpoint_filter=resnet18_filter, reference_checkpoints=(RESNET18_IMAGENET,),
)
def resnet18_classifier(
    *,
    num_classes: int = 4,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    weights: Optional[PathLike] = None,
) -> ImageClassifier:
    """torchvision's ResNet-18 with ``fc`` replaced by ``Linear(512, num_classes)``, as the dog-image reference.

    Fine-tune from ImageNet offline with ``encoder_weights="resnet18-f37072fd.pth"`` (a torchvision state-dict
    file; its 1000-class ``fc`` is left out). Reference checkpoints wrap the network as ``self.resnet18``; their
    ``resnet18.`` prefix is removed on load.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        encoder_weights: torchvision ResNet-18 state-dict file for everything but the head.
        weights: A checkpoint of the whole classifier, loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.resnet18_classifier(num_classes=4).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 4])
    """
    features = torchvision_resnet_encoder("resnet18", in_channels=in_channels)
    if encoder_weights is not None:
        load_torchvision_encoder(features, encoder_weights)
    return ImageClassifier(features, nn.Linear(512, num_classes), num_classes=num_classes, in_channels=in_channels,
                           reference_size=224)
