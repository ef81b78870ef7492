"""LinkNet: a light decoder that adds, rather than concatenates, each skip connection, on any encoder, with
segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import LinknetDecoder
from ..encoders import EncoderError, create_encoder
from ._base import SegmentationModel
from .encoder_decoder import decoder_norm, pyramid_multiple, smp_filter, upsampling_head
from .encoder_decoder import encoder_depth as depth_of
from .smp_config import check_smp_config

__all__ = ["linknet"]

PathLike = Union[str, os.PathLike]


# smp's Linknet decoder names are encdec's; only its head is renamed.
@register_model(task="segmentation", checkpoint_filter=smp_filter([], "head.0."), config_check=check_smp_config)
def linknet(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """LinkNet on any encoder: torchvision backbones, or ``"timm:NAME"``.

    :class:`~encdec.decoders.LinknetDecoder` climbs from the coarsest map, one block per halving of its stride,
    each adding the encoder's map of its resolution; a 1x1 head gives logits at the input size. Input sides
    divisible by the coarsest stride (32). The defaults are segmentation_models_pytorch's ``Linknet`` defaults
    (its ``classes=1`` aside), and smp ``Linknet`` checkpoints on ResNet encoders load.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept (smp's ``encoder_depth``; 5 keeps every map).
        decoder_use_norm: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no BatchNorm in the decoder).
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.linknet(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    norm = decoder_norm(decoder_use_norm)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights, depth=depth_of(encoder_depth))
    if min(body.strides) < 2:
        raise EncoderError(f"linknet adds each encoder map to a decoder block's output at twice its stride, so it "
                           f"needs maps of stride 2 and coarser; {encoder} gives strides {body.strides} (a stride-1 "
                           "map, as VGG's); use unet or fpn with it")
    multiple = pyramid_multiple(body, "linknet", len(body.strides))
    decoder = LinknetDecoder(body.out_channels, levels=multiple.bit_length() - 1, norm=norm)
    head = upsampling_head(decoder.out_channels, num_classes, 1)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=multiple)
