"""SegFormer: a Mix Transformer (or any) encoder and an all-MLP decoder, with segmentation_models_pytorch's
defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import SegformerDecoder
from ..encoders import create_encoder
from ._base import SegmentationModel
from .encoder_decoder import check_stride4_options, smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["segformer"]

PathLike = Union[str, os.PathLike]


# smp's Segformer decoder names are encdec's; only its head is renamed (and the stages it does not run dropped).
@register_model(task="segmentation", checkpoint_filter=smp_filter([], "head.0."), config_check=check_smp_config)
def segformer(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    decoder_segmentation_channels: int = 256,
    upsampling: int = 4,
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """SegFormer (Xie et al. 2021): an all-MLP decoder on a Mix Transformer encoder (mit_b0 ... mit_b5) or any.

    The paper's models are ``encoder="mit_b0"`` ... ``"mit_b5"``.

    :class:`~encdec.decoders.SegformerDecoder` projects every encoder map by a linear layer per position, brings
    them to stride 4 and fuses them by a 1x1 convolution; a 1x1 head and bilinear x4 upsampling give logits at the
    input size. Input sides divisible by the encoder's coarsest stride (32). The defaults are
    segmentation_models_pytorch's ``Segformer`` defaults (its ``classes=1`` aside; its default encoder too,
    ``resnet34``: the paper's model is ``encoder="mit_b0"`` to ``"mit_b5"``), and its checkpoints load with its
    outputs.

    Args:
        encoder: An encoder name: ``"mit_b0"`` ... ``"mit_b5"``, :func:`encdec.encoders.list_encoders`, or
            ``"timm:NAME"``.
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: A state-dict file of the encoder (smp's ``mit_bN`` ImageNet file, torchvision's or
            timm's).
        encoder_depth: Halvings of the encoder kept: 3, 4 or 5.
        decoder_segmentation_channels: Channels of each projection and of the decoder's output.
        upsampling: Upsampling factor of the head: 4, from the stride-4 output to the input size.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: ``encoder_depth`` outside 3-5, or an ``upsampling`` that does not give the input size.

    Example:
        >>> import torch, encdec
        >>> encdec.segformer(encoder="mit_b0", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    check_stride4_options("segformer", encoder_depth, upsampling)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights,
                          depth=None if encoder_depth == 5 else encoder_depth)
    decoder = SegformerDecoder(body.out_channels, body.strides, out_channels=decoder_segmentation_channels)
    head = upsampling_head(decoder.out_channels, num_classes, upsampling)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=max(body.strides))
