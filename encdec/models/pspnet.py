"""PSPNet: pyramid pooling on a shallow encoder, with segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import PSPDecoder
from ..encoders import create_encoder
from ._base import SegmentationModel
from .encoder_decoder import decoder_norm, smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["pspnet"]

PathLike = Union[str, os.PathLike]

# smp's PSPNet decoder names are encdec's; only its head is renamed (and the stages it does not run dropped).
@register_model(task="segmentation", checkpoint_filter=smp_filter([], "head.0."), config_check=check_smp_config)
def pspnet(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 3,
    psp_out_channels: int = 512,
    psp_dropout: float = 0.2,
    upsampling: int = 8,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """PSPNet on any encoder, cut at ``encoder_depth``: pyramid pooling over its coarsest remaining map.

    The encoder keeps its maps down to stride ``2 ** encoder_depth`` and only the layers they need (a ResNet
    without ``layer3`` and ``layer4`` at the default 3); :class:`~encdec.decoders.PSPDecoder` pools that map to
    1x1, 2x2, 3x3 and 6x6 grids and fuses them with it; a 3x3 head and bilinear upsampling by ``upsampling`` give
    logits at the input size. Input sides divisible by the coarsest stride kept (8). The defaults are
    segmentation_models_pytorch's ``PSPNet`` defaults (its ``classes=1`` aside), and smp ``PSPNet`` checkpoints on
    ResNet encoders load (the weights of the stages smp keeps but does not run are left out).

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept (3: its maps down to stride 8).
        psp_out_channels: Channels of the decoder's output.
        psp_dropout: Spatial dropout after the decoder.
        upsampling: Upsampling factor of the head; the coarsest stride kept, for logits at the input size.
        decoder_use_norm: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no BatchNorm in the decoder).
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: ``upsampling`` does not bring the coarsest map kept back to the input size.

    Example:
        >>> import torch, encdec
        >>> encdec.pspnet(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights, depth=encoder_depth)
    stride = max(body.strides)
    if upsampling != stride:
        raise ValueError(f"upsampling={upsampling} would not bring {encoder}'s coarsest map at encoder_depth="
                         f"{encoder_depth} (stride {stride}) back to the input size; pass upsampling={stride}")
    decoder = PSPDecoder(body.out_channels, out_channels=psp_out_channels, dropout=psp_dropout,
                         norm=decoder_norm(decoder_use_norm))
    head = upsampling_head(decoder.out_channels, num_classes, upsampling, kernel_size=3)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=stride)
