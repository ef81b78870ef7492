"""Encoders: networks that map an image to feature maps from high to low resolution, for every decoder.

Four sources follow one contract (``contract``: ``out_channels``, ``strides``, a list of
maps): torchvision's classification zoo (``torchvision_backbones``), timm when it is installed
(``timm_backbones``, names ``"timm:NAME"``), SegFormer's Mix Transformers (``mix_transformer``, ``"mit_b0"`` to
``"mit_b5"``) and the course ResNets (``course``).

Example:
    >>> from encdec.encoders import create_encoder
    >>> enc = create_encoder("resnet34")
    >>> enc.out_channels, enc.strides
    ([64, 64, 128, 256, 512], [2, 4, 8, 16, 32])
"""

from __future__ import annotations

import os
from typing import List, Optional, Union

from torch import nn

from .contract import (
    Encoder,
    EncoderError,
    adapt_input_channels,
    check_pyramid,
    dilate,
    maps_within_depth,
    pyramid_stride,
)
from .course import ResNetEncoder, torchvision_resnet_encoder
from .mix_transformer import MIT_VARIANTS, MixTransformerEncoder, is_mix_transformer
from .timm_backbones import TIMM_PREFIX, TimmEncoder, TimmViTEncoder, timm_available
from .torchvision_backbones import BACKBONES, TorchvisionEncoder, list_torchvision_backbones, torchvision_dilation

__all__ = [
    "BACKBONES", "Encoder", "EncoderError", "MIT_VARIANTS", "MixTransformerEncoder", "ResNetEncoder", "TIMM_PREFIX",
    "TimmEncoder", "TimmViTEncoder", "TorchvisionEncoder",
    "adapt_input_channels", "check_pyramid", "create_encoder", "dilate", "list_encoders", "maps_within_depth",
    "pyramid_stride",
    "timm_available", "torchvision_dilation", "torchvision_resnet_encoder",
]


def create_encoder(name: str, *, in_channels: int = 3, weights: Optional[Union[str, os.PathLike]] = None,
                   output_stride: Optional[int] = None, depth: Optional[int] = None) -> nn.Module:
    """Build an encoder by name: a torchvision backbone (``"resnet34"``, ``"efficientnet_b0"``, ...), a Mix
    Transformer (``"mit_b0"`` ... ``"mit_b5"``) or ``"timm:NAME"``.

    Args:
        name: See ``list_encoders``; ``"mit_b0"`` to ``"mit_b5"``; ``"timm:"`` followed by any timm model with a
            ``features_only`` form.
        in_channels: Image channels.
        weights: A local ImageNet state-dict file of the backbone (torchvision's or timm's).
        output_stride: Dilate the last stages so no map is coarser than this (8 or 16).
        depth: Keep only the maps within this many halvings of the input (stride ``2 ** depth`` at most) and the
            layers they need: segmentation_models_pytorch's ``encoder_depth``; default: every map.

    Raises:
        EncoderError: An unknown name (the message lists close matches), or timm missing for ``timm:`` names.

    Example:
        >>> [f.shape[-1] for f in create_encoder("convnext_tiny")(torch.zeros(1, 3, 64, 64))]
        [16, 8, 4, 2]
    """
    if name.startswith(TIMM_PREFIX):
        return TimmEncoder(name[len(TIMM_PREFIX):], in_channels=in_channels, weights=weights,
                           output_stride=output_stride, depth=depth)
    if is_mix_transformer(name):
        if output_stride is not None and output_stride < 32:
            raise EncoderError(f"{name} cannot run dilated (output_stride={output_stride}): its stages downsample by "
                               "patch embedding; use output stride 32 or a convolutional encoder")
        return MixTransformerEncoder(name, in_channels=in_channels, weights=weights, depth=depth)
    return TorchvisionEncoder(name, in_channels=in_channels, weights=weights, output_stride=output_stride,
                              depth=depth)


def list_encoders(pattern: Optional[str] = None) -> List[str]:
    """The torchvision backbones available as encoders (timm's are ``"timm:NAME"``; ``timm.list_models()``).

    Example:
        >>> len(list_encoders()) >= 40, list_encoders("convnext*")[:2]
        (True, ['convnext_base', 'convnext_large'])
    """
    return list_torchvision_backbones(pattern)
