"""DPT: a Vision Transformer's blocks reassembled into a pyramid and fused, with segmentation_models_pytorch's
defaults and names."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from .._registry import register_model
from ..decoders import DPTDecoder
from ..encoders import TIMM_PREFIX, EncoderError, TimmViTEncoder
from ._base import SegmentationModel
from .encoder_decoder import smp_filter
from .smp_config import check_smp_config

__all__ = ["DPTModel", "dpt"]

PathLike = Union[str, os.PathLike]

# smp's DPT head is ``segmentation_head.head.*``; its decoder names are encdec's.
SMP_DPT_RULES = [(r"^segmentation_head\.head\.", "head.")]


class DPTModel(SegmentationModel):
    """A :class:`~encdec.models.SegmentationModel` whose decoder also reads the encoder's prefix (class) tokens.

    Args:
        encoder: A :class:`~encdec.encoders.TimmViTEncoder`.
        decoder: A :class:`~encdec.decoders.DPTDecoder`.
        head: The head on the decoder's output.
        **kwargs: :class:`~encdec.models.SegmentationModel`'s keyword arguments.

    Example:
        >>> import torch, encdec
        >>> timm_here = encdec.encoders.timm_available()
        >>> model = encdec.dpt(encoder="timm:vit_tiny_patch16_224", num_classes=3) if timm_here else None
        >>> tuple(model.eval()(torch.zeros(1, 3, 64, 96)).shape) if model else (1, 3, 64, 96)
        (1, 3, 64, 96)
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, head: nn.Module, **kwargs: Any) -> None:
        super().__init__(encoder, decoder, head, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self.check_input(x)
        maps, tokens = self.encoder.forward_with_prefix_tokens(x)
        masks = self.head(self.decoder(maps, tokens))
        if self.returns_labels and self.classification_head is not None:
            return masks, self.classification_head(maps[-1])
        return masks


def _head(channels: int, num_classes: int) -> nn.Sequential:
    """DPT's head: 3x3 conv + BN + ReLU, dropout, 1x1 conv to ``num_classes``, bilinear x2 (stride 2 to 1)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                         nn.ReLU(inplace=True), nn.Dropout(0.1), nn.Conv2d(channels, num_classes, 1),
                         nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True))


@register_model(task="segmentation", checkpoint_filter=smp_filter(SMP_DPT_RULES, "head.0."),
                config_check=check_smp_config)
def dpt(
    *,
    encoder: str = "timm:vit_base_patch16_224.augreg_in21k",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 4,
    encoder_output_indices: Optional[Sequence[int]] = None,
    decoder_readout: str = "cat",
    decoder_intermediate_channels: Sequence[int] = (256, 512, 1024, 1024),
    decoder_fusion_channels: int = 256,
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> DPTModel:
    """DPT (Ranftl et al. 2021) on a timm Vision Transformer: its blocks' outputs reassembled and fused.

    :class:`~encdec.encoders.TimmViTEncoder` reads the outputs of ``encoder_depth`` transformer blocks (spread
    evenly, the last block last) with their class tokens; :class:`~encdec.decoders.DPTDecoder` reads the class
    token into each (``decoder_readout``), reassembles them to strides 4 to 32 and fuses them from the coarsest
    up to stride 2; a 3x3 conv + BN + ReLU, dropout, a 1x1 conv and bilinear x2 upsampling give logits at the
    input size. Input sides divisible by twice the patch size (32 for 16-pixel patches). The defaults are
    segmentation_models_pytorch's ``DPT`` defaults (its ``classes=1`` aside), and its checkpoints load with its
    outputs. timm is needed (``pip install 'encdec[timm]'``).

    Args:
        encoder: ``"timm:NAME"`` of a ViT-like timm model (``vit_*``, ``deit_*``, ``eva*``, ...).
        num_classes: Output channels.
        in_channels: Image channels.
        encoder_weights: A local timm state-dict file of the classification model.
        encoder_depth: How many blocks' outputs the decoder fuses.
        encoder_output_indices: Which blocks; default: spread evenly.
        decoder_readout: ``"cat"``, ``"add"`` or ``"ignore"`` (how the class token joins each map).
        decoder_intermediate_channels: Channels of each reassembled map, one per block read.
        decoder_fusion_channels: Channels of the fused maps.
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's or smp's), loaded after building.

    Raises:
        EncoderError: An encoder that is not a timm model with ``forward_intermediates``, or timm missing.
        ValueError: A readout or channel list that does not fit.

    Example:
        >>> import torch, encdec
        >>> model = encdec.dpt(encoder="timm:vit_tiny_patch16_224") if encdec.encoders.timm_available() else None
        >>> model.input_spec.multiple if model else 32
        32
    """
    if not encoder.startswith(TIMM_PREFIX):
        raise EncoderError(f"dpt reads the blocks of a timm Vision Transformer: pass encoder='timm:NAME' (such as "
                           f"'timm:vit_base_patch16_224'), got {encoder!r}")
    body = TimmViTEncoder(encoder[len(TIMM_PREFIX):], in_channels=in_channels, weights=encoder_weights,
                          depth=encoder_depth, output_indices=encoder_output_indices)
    decoder = DPTDecoder(body.out_channels, body.strides, has_prefix_tokens=body.num_prefix_tokens > 0,
                         readout=decoder_readout, intermediate_channels=tuple(decoder_intermediate_channels),
                         fusion_channels=decoder_fusion_channels)
    # the coarsest reassembled map is half the encoder's grid, which the fusion doubles back: the grid must be even
    return DPTModel(body, decoder, _head(decoder.out_channels, num_classes), num_classes=num_classes,
                    in_channels=in_channels, size_multiple=2 * max(body.strides), aux_params=aux_params)
