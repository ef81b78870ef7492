"""UPerNet: pyramid pooling and a feature pyramid fused at stride 4, on any encoder, with
segmentation_models_pytorch's defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from .._registry import register_model
from ..decoders import UPerNetDecoder
from ..encoders import EncoderError, create_encoder
from ._base import SegmentationModel
from .encoder_decoder import check_stride4_options, decoder_norm, smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["upernet"]

PathLike = Union[str, os.PathLike]


# smp's UPerNet decoder names are encdec's; only its head is renamed (and the stages it does not run dropped).
@register_model(task="segmentation", checkpoint_filter=smp_filter([], "head.0."), config_check=check_smp_config)
def upernet(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    decoder_channels: int = 256,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    upsampling: int = 4,
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """UPerNet (Xiao et al. 2018) on any encoder: pyramid pooling and a feature pyramid fused at stride 4.

    Pyramid pooling on the coarsest map, a top-down feature pyramid through the finer ones down to the stride-4
    map, which the encoder must have.

    :class:`~encdec.decoders.UPerNetDecoder` layer-normalises each encoder map from stride 4 on, pools the
    coarsest to 1x1, 2x2, 3x3 and 6x6 grids, climbs the pyramid down to stride 4, and fuses all levels; a 1x1
    head and bilinear x4 upsampling give logits at the input size. Input sides divisible by the encoder's
    coarsest stride (32). The defaults are segmentation_models_pytorch's ``UPerNet`` defaults (its ``classes=1``
    aside), and its checkpoints load with its outputs.

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``) with a stride-4 map.
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder (torchvision's or timm's).
        encoder_depth: Halvings of the encoder kept: 3, 4 or 5.
        decoder_channels: Channels of every pyramid level and of the decoder's output.
        decoder_use_norm: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no BatchNorm in the decoder but
            in the pooling's fusing convolution, as smp builds it).
        upsampling: Upsampling factor of the head: 4, from the stride-4 output to the input size.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        ValueError: ``encoder_depth`` outside 3-5, or an ``upsampling`` that does not give the input size.
        EncoderError: An encoder without a stride-4 map, or with one map only from there on.

    Example:
        >>> import torch, encdec
        >>> encdec.upernet(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    check_stride4_options("upernet", encoder_depth, upsampling)
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights,
                          depth=None if encoder_depth == 5 else encoder_depth)
    if 4 not in body.strides or body.strides[-1] == 4:
        raise EncoderError(f"upernet needs a stride-4 feature map and a coarser one; {encoder} gives strides "
                           f"{list(body.strides)}")
    decoder = UPerNetDecoder(body.out_channels, first=list(body.strides).index(4), out_channels=decoder_channels,
                             norm=decoder_norm(decoder_use_norm))
    head = upsampling_head(decoder.out_channels, num_classes, upsampling)
    return SegmentationModel(body, decoder, head, num_classes=num_classes, in_channels=in_channels,
                             aux_params=aux_params, size_multiple=max(body.strides))
