"""DeepLabV3+ on any encoder that downsamples by convolution, with segmentation_models_pytorch's defaults and
names."""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

from .._registry import register_model
from ..decoders import DeepLabV3PlusDecoder
from ..encoders import EncoderError, create_encoder
from ._base import SegmentationModel
from .encoder_decoder import encoder_depth as depth_of
from .encoder_decoder import smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["deeplabv3plus"]

PathLike = Union[str, os.PathLike]

# smp DeepLabV3Plus names -> encdec names.
SMP_DEEPLABV3PLUS_RULES = [
    (r"^decoder\.aspp\.0\.convs\.", "decoder.aspp.branches."),
    (r"^decoder\.aspp\.0\.project\.", "decoder.aspp.project."),
    (r"^decoder\.aspp\.1\.", "decoder.aspp_out.0."),
    (r"^decoder\.aspp\.2\.", "decoder.aspp_out.1."),
    (r"^decoder\.block1\.", "decoder.skip."),
    (r"^decoder\.block2\.", "decoder.fuse."),
]


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_DEEPLABV3PLUS_RULES, "head.0."),
                config_check=check_smp_config)
def deeplabv3plus(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_output_stride: int = 16,
    decoder_channels: int = 256,
    decoder_atrous_rates: Sequence[int] = (12, 24, 36),
    decoder_aspp_separable: bool = True,
    decoder_aspp_dropout: float = 0.5,
    encoder_depth: int = 5,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """DeepLabV3+ on any encoder: the encoder dilated to ``encoder_output_stride``, ASPP, one stride-4 skip.

    The encoder's last stages trade stride for dilation so no map is coarser than ``encoder_output_stride``;
    :class:`~encdec.decoders.DeepLabV3PlusDecoder` fuses ASPP's output with the stride-4 map, and a 1x1 head with
    x4 bilinear upsampling gives logits at the input size. Input sides divisible by ``encoder_output_stride``.
    The defaults are segmentation_models_pytorch's ``DeepLabV3Plus`` defaults (its ``classes=1`` aside), and smp
    checkpoints on ResNet encoders load.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``) with a stride-4 map.
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder.
        encoder_output_stride: 8 or 16.
        decoder_channels: Channels of ASPP and the decoder.
        decoder_atrous_rates: ASPP's three dilation rates.
        decoder_aspp_separable: Depthwise-separable ASPP branches.
        decoder_aspp_dropout: Dropout after ASPP.
        encoder_depth: Halvings of the encoder kept (smp's ``encoder_depth``; 5 keeps every map).
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.deeplabv3plus(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    if encoder_output_stride not in (8, 16):
        raise ValueError(f"encoder_output_stride must be 8 or 16, got {encoder_output_stride}")
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights,
                          output_stride=encoder_output_stride, depth=depth_of(encoder_depth))
    if 4 not in body.strides:
        raise EncoderError(f"deeplabv3plus needs a stride-4 feature map; {encoder} gives strides {body.strides}")
    decoder = DeepLabV3PlusDecoder(body.out_channels, body.strides.index(4), out_channels=decoder_channels,
                                   atrous_rates=decoder_atrous_rates, aspp_separable=decoder_aspp_separable,
                                   aspp_dropout=decoder_aspp_dropout)
    head = upsampling_head(decoder_channels, num_classes, 4)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             size_multiple=max(body.strides))
