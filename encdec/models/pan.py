"""PAN: pyramid attention on the coarsest map and attention-gated upsampling to stride 4, on any encoder, with
segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import PANDecoder
from ..encoders import EncoderError, create_encoder
from ._base import SegmentationModel
from .encoder_decoder import check_stride4_options, smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["pan"]

PathLike = Union[str, os.PathLike]

# smp PAN names -> encdec names: smp's ConvBnRelu units name their conv and norm, encdec's ConvBNAct number them.
SMP_PAN_RULES = [
    (r"^(decoder\..+)\.conv\.", lambda m: f"{m[1]}.0."),
    (r"^(decoder\..+)\.bn\.", lambda m: f"{m[1]}.1."),
]
_FPA_POOLINGS = 8  # FPA pools its map three times by 2: the map must be at least 8 positions across


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_PAN_RULES, "head.0."),
                config_check=check_smp_config)
def pan(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    encoder_output_stride: int = 16,
    decoder_channels: int = 32,
    decoder_interpolation: str = "bilinear",
    upsampling: int = 4,
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """PAN (Li et al. 2018) on any encoder: feature pyramid attention on the coarsest map, global attention
    upsampling through the maps down to stride 4.

    The encoder is dilated to ``encoder_output_stride``; :class:`~encdec.decoders.PANDecoder` gates a projection
    of the coarsest map by a small pyramid of large-kernel convolutions and adds its global average, then merges
    each finer map gated by the coarser one's global context; a 3x3 head and bilinear x4 upsampling give logits
    at the input size. Input sides divisible by the output stride, and at least 8 times it (the pyramid pools the
    coarsest map three times). The defaults are segmentation_models_pytorch's ``PAN`` defaults (its ``classes=1``
    aside), and its checkpoints load with its outputs.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``) with a stride-4 map.
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept: 3, 4 or 5.
        encoder_output_stride: 16 (dilating the last stage) or 32.
        decoder_channels: Channels of the decoder.
        decoder_interpolation: The attention upsampling's ``"bilinear"`` (``align_corners=True``) or
            ``"nearest"`` resizing.
        upsampling: Upsampling factor of the head: 4, from the stride-4 map to the input size.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: An output stride other than 16 or 32, ``encoder_depth`` below 3, or an ``upsampling`` that
            does not give the input size.
        EncoderError: An encoder without a stride-4 map.

    Example:
        >>> import torch, encdec
        >>> encdec.pan(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 128, 128)).shape
        torch.Size([1, 3, 128, 128])
    """
    if encoder_output_stride not in (16, 32):
        raise ValueError(f"encoder_output_stride must be 16 or 32, got {encoder_output_stride}")
    check_stride4_options("pan", encoder_depth, upsampling)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights,
                          output_stride=encoder_output_stride if encoder_output_stride < 32 else None,
                          depth=None if encoder_depth == 5 else encoder_depth)
    if 4 not in body.strides:
        raise EncoderError(f"pan needs a stride-4 feature map; {encoder} gives strides {body.strides}")
    decoder = PANDecoder(body.out_channels, body.strides.index(4), out_channels=decoder_channels,
                         upsample=decoder_interpolation)
    head = upsampling_head(decoder.out_channels, num_classes, upsampling, kernel_size=3)
    stride = max(body.strides)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=stride, min_size=_FPA_POOLINGS * stride)
