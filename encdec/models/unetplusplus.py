"""UNet++: nested, densely connected skip pathways on any encoder with a map per halving, with
segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from .._registry import register_model
from ..decoders import UNetPlusPlusDecoder
from ..encoders import create_encoder
from ._base import SegmentationModel
from .encoder_decoder import decoder_norm, full_pyramid, smp_conv_pair_rules, smp_filter, upsampling_head
from .encoder_decoder import encoder_depth as depth_of
from .smp_config import check_smp_config

__all__ = ["unetplusplus"]

PathLike = Union[str, os.PathLike]

# smp UnetPlusPlus names -> encdec names: each node's two Conv2dReLU units are one DoubleConv here.
SMP_UNETPLUSPLUS_RULES = smp_conv_pair_rules(r"decoder\.blocks\.x_\d+_\d+")


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_UNETPLUSPLUS_RULES, "head.0."),
                config_check=check_smp_config)
def unetplusplus(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    decoder_attention_type: Optional[str] = None,
    decoder_interpolation: str = "nearest",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """UNet++ (Zhou et al. 2018) on any encoder with one map per halving from stride 2.

    :class:`~encdec.decoders.UNetPlusPlusDecoder` links encoder and decoder by nested, densely connected
    convolution nodes: every node at a resolution sees every node before it at that resolution and the one below
    it, upsampled. A 3x3 head gives logits at the input size. Input sides divisible by the coarsest stride (32).
    The defaults are segmentation_models_pytorch's ``UnetPlusPlus`` defaults (its ``classes=1`` aside), and its
    checkpoints load with its outputs.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``) with maps at strides
            2, 4, 8, ... (ResNets, EfficientNets, RegNets; not ConvNeXt or VGG).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept (smp's ``encoder_depth``; as many ``decoder_channels``).
        decoder_use_norm: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no BatchNorm in the decoder).
        decoder_channels: Channels of the top row of nodes, one per encoder map.
        decoder_attention_type: ``"scse"`` adds squeeze-and-excitation to every node.
        decoder_interpolation: ``"nearest"`` or ``"bilinear"`` (pixel centres) upsampling.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: ``decoder_channels`` of another length than the encoder's maps, or an unknown interpolation or
            attention.
        EncoderError: An encoder without a map at every halving from stride 2.

    Example:
        >>> import torch, encdec
        >>> encdec.unetplusplus(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    if decoder_interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"decoder_interpolation must be 'nearest' or 'bilinear', got {decoder_interpolation!r}")
    if decoder_attention_type not in (None, "scse"):
        raise ValueError(f"decoder_attention_type={decoder_attention_type!r} is not supported; use None or 'scse'")
    norm = decoder_norm(decoder_use_norm)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights, depth=depth_of(encoder_depth))
    multiple = full_pyramid(body, "unetplusplus")
    if len(decoder_channels) != len(body.strides):
        raise ValueError(f"decoder_channels needs {len(body.strides)} entries for encoder {encoder!r} at "
                         f"encoder_depth={encoder_depth}, got {len(decoder_channels)}")
    decoder = UNetPlusPlusDecoder(body.out_channels, tuple(decoder_channels), upsample=decoder_interpolation,
                                  norm=norm, attention=decoder_attention_type)
    head = upsampling_head(decoder.out_channels, num_classes, 1, kernel_size=3)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=multiple)
