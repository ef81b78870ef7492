"""FPN: a feature pyramid decoder on any encoder, with segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import FPNDecoder
from ..encoders import create_encoder
from ._base import SegmentationModel
from .encoder_decoder import pyramid_multiple, smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["fpn"]

PathLike = Union[str, os.PathLike]

# smp FPN names -> encdec names.
SMP_FPN_RULES = [
    (r"^decoder\.p5\.", "decoder.top."),
    (r"^decoder\.p(\d)\.skip_conv\.", lambda m: f"decoder.laterals.{4 - int(m[1])}."),
    (r"^decoder\.seg_blocks\.(\d)\.block\.(\d)\.block\.", lambda m: f"decoder.branches.{m[1]}.{m[2]}."),
]


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_FPN_RULES, "head.0."),
                config_check=check_smp_config)
def fpn(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    decoder_pyramid_channels: int = 256,
    decoder_segmentation_channels: int = 128,
    decoder_merge_policy: str = "add",
    decoder_dropout: float = 0.2,
    decoder_interpolation: str = "nearest",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """FPN (feature pyramid network) on any encoder: torchvision backbones, or ``"timm:NAME"``.

    The last four encoder maps (strides 4-32) feed :class:`~encdec.decoders.FPNDecoder`; a 1x1 head and a x4
    bilinear upsampling give logits at the input size. Input sides divisible by the coarsest stride (32). The
    defaults are segmentation_models_pytorch's ``FPN`` defaults (its ``classes=1`` aside), and smp ``FPN``
    checkpoints on ResNet encoders load (``weights="smp_fpn.pth"``).

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        decoder_pyramid_channels: Channels of the pyramid.
        decoder_segmentation_channels: Channels of each segmentation branch.
        decoder_merge_policy: ``"add"`` or ``"cat"``.
        decoder_dropout: Spatial dropout after the merge.
        decoder_interpolation: Upsampling mode of the top-down path.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.fpn(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights)
    multiple = pyramid_multiple(body, "fpn", 4)
    decoder = FPNDecoder(body.out_channels, pyramid_channels=decoder_pyramid_channels,
                         segmentation_channels=decoder_segmentation_channels, merge=decoder_merge_policy,
                         dropout=decoder_dropout, interpolation=decoder_interpolation)
    head = upsampling_head(decoder.out_channels, num_classes, body.strides[-4])
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=multiple)
