"""MA-Net: position and multi-scale fusion attention on a U-Net-like decoder, on any encoder, with
segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from .._registry import register_model
from ..decoders import MAnetDecoder
from ..encoders import create_encoder
from ._base import SegmentationModel
from .encoder_decoder import decoder_norm, pyramid_multiple, smp_conv_pair_rules, smp_filter, upsampling_head
from .encoder_decoder import encoder_depth as depth_of
from .smp_config import check_smp_config

__all__ = ["manet"]

PathLike = Union[str, os.PathLike]

# smp MAnet names -> encdec names: each block's two Conv2dReLU units are one DoubleConv here.
SMP_MANET_RULES = smp_conv_pair_rules(r"decoder\.blocks\.\d+")


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_MANET_RULES, "head.0."),
                config_check=check_smp_config)
def manet(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_pab_channels: int = 64,
    decoder_interpolation: str = "nearest",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """MA-Net (Fan et al. 2020) on any encoder: position attention on the coarsest map, fusion attention upwards.

    :class:`~encdec.decoders.MAnetDecoder` lets every position of the coarsest map attend to every other one,
    then climbs one block per halving of its stride, each gating the upsampled map by channel attention from it
    and from the skip connection before concatenating them; a 3x3 head gives logits at the input size. Input
    sides divisible by the coarsest stride (32). The defaults are segmentation_models_pytorch's ``MAnet``
    defaults (its ``classes=1`` aside), and its checkpoints load with its outputs. The attention's memory grows
    with the square of the coarsest map's positions.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept (smp's ``encoder_depth``; as many ``decoder_channels``).
        decoder_use_norm: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no BatchNorm in the decoder).
        decoder_channels: Output channels of each block (one per halving of the coarsest stride).
        decoder_pab_channels: Channels of the position attention's queries and keys.
        decoder_interpolation: ``"nearest"`` or ``"bilinear"`` (pixel centres) upsampling.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: ``decoder_channels`` of another length than the halvings, or an unknown interpolation.

    Example:
        >>> import torch, encdec
        >>> encdec.manet(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    if decoder_interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"decoder_interpolation must be 'nearest' or 'bilinear', got {decoder_interpolation!r}")
    norm = decoder_norm(decoder_use_norm)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights, depth=depth_of(encoder_depth))
    multiple = pyramid_multiple(body, "manet", len(body.strides))
    levels = multiple.bit_length() - 1
    if len(decoder_channels) != levels:
        raise ValueError(f"decoder_channels needs {levels} entries for encoder {encoder!r} (stride {multiple}), "
                         f"got {len(decoder_channels)}")
    decoder = MAnetDecoder(body.out_channels, tuple(decoder_channels), pab_channels=decoder_pab_channels,
                           upsample=decoder_interpolation, norm=norm)
    head = upsampling_head(decoder.out_channels, num_classes, 1, kernel_size=3)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=multiple)
