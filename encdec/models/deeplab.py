"""DeepLabV3 and DeepLabV3+ on any encoder that downsamples by convolution, with segmentation_models_pytorch's
defaults and names; DeepLabV3 also in torchvision's layout, loading its ``deeplabv3_resnet50`` files."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from torch import Tensor, nn

from .._registry import register_model
from ..blocks import ConvBNAct
from ..decoders import DeepLabV3Decoder, DeepLabV3PlusDecoder
from ..encoders import EncoderError, TorchvisionEncoder, create_encoder, torchvision_dilation
from ..weights import WeightsError, remap_keys
from ._base import SegmentationModel
from .encoder_decoder import encoder_depth as depth_of
from .encoder_decoder import smp_filter, upsampling_head
from .smp_config import check_smp_config

__all__ = ["DeepLabV3Model", "deeplabv3", "deeplabv3plus"]

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
    aux_params: Optional[Dict[str, Any]] = None,
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
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
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
                             aux_params=aux_params, size_multiple=max(body.strides))


# smp DeepLabV3 names -> encdec names (smp's earlier Sequential decoder, ``decoder.0``-``2``, too).
SMP_DEEPLABV3_RULES = [
    (r"^decoder\.(?:aspp|0)\.convs\.", "decoder.aspp.branches."),
    (r"^decoder\.0\.project\.", "decoder.aspp.project."),
    (r"^decoder\.(?:conv|1)\.", "decoder.conv.0."),
    (r"^decoder\.(?:bn|2)\.", "decoder.conv.1."),
]
# torchvision's deeplabv3_resnet50/101 names -> encdec names: its ``classifier`` is ASPP, conv, BN, ReLU, 1x1 conv.
TORCHVISION_DEEPLABV3_RULES = [
    (r"^backbone\.", "encoder."),
    (r"^classifier\.0\.convs\.", "decoder.aspp.branches."),
    (r"^classifier\.0\.project\.", "decoder.aspp.project."),
    (r"^classifier\.1\.", "decoder.conv.0."),
    (r"^classifier\.2\.", "decoder.conv.1."),
    (r"^classifier\.4\.", "head.0."),
    (r"^aux_classifier\.", "aux_head."),
]
_smp_deeplabv3_filter = smp_filter(SMP_DEEPLABV3_RULES, "head.0.")
LAYOUTS = ("smp", "torchvision")


def _layout_of(model: Optional[nn.Module]) -> str:
    return ((getattr(model, "encdec_config", None) or {}).get("kwargs") or {}).get("layout", "smp")


def deeplabv3_filter(state: Dict[str, Any], model: Optional[nn.Module]) -> Dict[str, Any]:
    """Convert an smp ``DeepLabV3`` or a torchvision ``deeplabv3_resnet*`` state dict to encdec's names.

    A torchvision file loads only into ``layout="torchvision"`` and an smp one only into ``layout="smp"``: their
    tensors fit either, and give other outputs in the other. torchvision's auxiliary head (``aux_classifier``) is
    dropped, and listed as dropped, by a model built without ``aux_loss``.

    Raises:
        WeightsError: A file of the other layout than the model's, naming the argument that loads it.

    Example:
        >>> import torch
        >>> sorted(deeplabv3_filter({"classifier.4.bias": torch.zeros(1), "backbone.bn1.bias": torch.zeros(1),
        ...                          "aux_classifier.4.bias": torch.zeros(1)}, None))
        ['encoder.bn1.bias', 'head.0.bias']
    """
    layout = _layout_of(model)
    if any(k.startswith("backbone.") for k in state) and any(k.startswith("classifier.") for k in state):
        if model is not None and layout != "torchvision":
            raise WeightsError("this is a torchvision DeepLabV3 state dict (backbone.*, classifier.*): its tensors "
                               "fit this smp-layout model but give other outputs; build deeplabv3(..., "
                               "layout='torchvision') to load it (aux_loss=True keeps its auxiliary head)")
        drop = [] if getattr(model, "aux_head", None) is not None else [r"^aux_classifier\."]
        return remap_keys(state, TORCHVISION_DEEPLABV3_RULES, drop=drop)
    if layout == "torchvision" and any(k.startswith("segmentation_head.") for k in state):
        raise WeightsError("this is an smp DeepLabV3 checkpoint: its tensors fit this torchvision-layout model but "
                           "give other outputs; build deeplabv3(..., layout='smp') to load it")
    return _smp_deeplabv3_filter(state, model)


class DeepLabV3Model(SegmentationModel):
    """A :class:`~encdec.models.SegmentationModel` that may carry torchvision's auxiliary FCN head.

    ``forward`` returns the main logits only, in training and evaluation alike, so the model goes wherever a
    segmentation model goes (``predict``, tiling, ``fit``, ONNX export); :meth:`forward_with_aux` returns
    torchvision's ``{"out": ..., "aux": ...}`` for an auxiliary loss.

    Args:
        encoder: The encoder.
        decoder: The decoder.
        head: The main head.
        aux_head: A head on the encoder's second-coarsest map, or ``None``.
        **kwargs: :class:`~encdec.models.SegmentationModel`'s keyword arguments.

    Example:
        >>> import torch, encdec
        >>> model = encdec.deeplabv3(encoder="resnet50", num_classes=3, layout="torchvision", aux_loss=True).eval()
        >>> {k: tuple(v.shape) for k, v in model.forward_with_aux(torch.zeros(1, 3, 32, 32)).items()}
        {'out': (1, 3, 32, 32), 'aux': (1, 3, 32, 32)}
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, head: nn.Module, *,
                 aux_head: Optional[nn.Module] = None, **kwargs: Any) -> None:
        super().__init__(encoder, decoder, head, **kwargs)
        self.aux_head = aux_head

    def forward_with_aux(self, x: Tensor) -> Dict[str, Tensor]:
        """The main logits (``"out"``) and, with an auxiliary head, its logits (``"aux"``), as torchvision's
        segmentation models return them."""
        self.check_input(x)
        features = self.encoder(x)
        out = {"out": self.head(self.decoder(features))}
        if self.aux_head is not None:
            out["aux"] = self.aux_head(features[-2])
        return out


@register_model(task="segmentation", checkpoint_filter=deeplabv3_filter, config_check=check_smp_config)
def deeplabv3(
    *,
    encoder: str = "resnet34",
    num_classes: int = 2,
    in_channels: int = 3,
    encoder_weights: Optional[PathLike] = None,
    encoder_depth: int = 5,
    encoder_output_stride: int = 8,
    decoder_channels: int = 256,
    decoder_atrous_rates: Sequence[int] = (12, 24, 36),
    decoder_aspp_separable: bool = False,
    decoder_aspp_dropout: float = 0.5,
    upsampling: Optional[int] = None,
    layout: str = "smp",
    aux_loss: bool = False,
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> DeepLabV3Model:
    """DeepLabV3 on any encoder: the encoder dilated to ``encoder_output_stride``, ASPP on its coarsest map.

    :class:`~encdec.decoders.DeepLabV3Decoder` runs atrous spatial pyramid pooling and a 3x3 conv on the coarsest
    map; a 1x1 head and bilinear upsampling by the output stride give logits at the input size. Input sides
    divisible by ``encoder_output_stride``. The defaults are segmentation_models_pytorch's ``DeepLabV3`` defaults
    (its ``classes=1`` aside), and its checkpoints load with its outputs.

    ``layout="torchvision"`` builds torchvision's ``deeplabv3_resnet50``/``101`` on the same encoder (ResNets
    only): the first block of each dilated stage keeps the previous stage's dilation (torchvision's
    ``replace_stride_with_dilation``) and the logits are upsampled at pixel centres (``align_corners=False``), so
    torchvision's own state dicts load with its outputs; ``aux_loss=True`` adds its auxiliary FCN head on the
    second-coarsest map (:meth:`DeepLabV3Model.forward_with_aux`; ``forward`` returns the main logits only, so
    that the model goes wherever a segmentation model goes).

    Args:
        encoder: An encoder name (:func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``).
        num_classes: Output channels (torchvision's files: 21).
        in_channels: Image channels.
        encoder_weights: An ImageNet state-dict file of the encoder.
        encoder_depth: Halvings of the encoder kept (smp's ``encoder_depth``; 5 keeps every map).
        encoder_output_stride: 8 or 16.
        decoder_channels: Channels of ASPP and the decoder.
        decoder_atrous_rates: ASPP's three dilation rates.
        decoder_aspp_separable: Depthwise-separable ASPP branches.
        decoder_aspp_dropout: Dropout after ASPP.
        upsampling: The head's upsampling factor; ``None``: the coarsest stride, for logits at the input size.
        layout: ``"smp"`` or ``"torchvision"`` (see above).
        aux_loss: With ``layout="torchvision"``: build torchvision's auxiliary head (``aux_classifier``).
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (encdec's, smp's or torchvision's), loaded after building.

    Raises:
        ValueError: An output stride other than 8 or 16, an ``upsampling`` that does not give the input size, an
            unknown ``layout``, or ``aux_loss`` without ``layout="torchvision"``.
        EncoderError: ``layout="torchvision"`` on an encoder that is not a torchvision ResNet.

    Example:
        >>> import torch, encdec
        >>> encdec.deeplabv3(encoder="resnet18", num_classes=3).eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
    """
    if encoder_output_stride not in (8, 16):
        raise ValueError(f"encoder_output_stride must be 8 or 16, got {encoder_output_stride}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(repr(v) for v in LAYOUTS)}, got {layout!r}")
    if aux_loss and layout != "torchvision":
        raise ValueError("aux_loss=True builds torchvision's auxiliary head: pass layout='torchvision' with it")
    body = create_encoder(encoder, in_channels=in_channels, weights=encoder_weights,
                          output_stride=encoder_output_stride, depth=depth_of(encoder_depth))
    stride = max(body.strides)
    if upsampling is not None and upsampling != stride:
        raise ValueError(f"upsampling={upsampling} would not bring {encoder}'s coarsest map (stride {stride}) back "
                         f"to the input size; pass upsampling={stride} or None")
    aux_head = None
    if layout == "torchvision":
        if not isinstance(body, TorchvisionEncoder):
            raise EncoderError(f"layout='torchvision' builds torchvision's DeepLabV3, on its ResNets; {encoder} is "
                               "not a torchvision encoder")
        torchvision_dilation(body)
        if aux_loss:
            if len(body.strides) < 2:
                raise ValueError(f"aux_loss needs two encoder maps; encoder_depth={encoder_depth} keeps one")
            aux_in = body.out_channels[-2]
            aux_head = nn.Sequential(*ConvBNAct(aux_in, aux_in // 4, 3, bias=False), nn.Dropout(0.1),
                                     nn.Conv2d(aux_in // 4, num_classes, 1),
                                     nn.Upsample(scale_factor=body.strides[-2], mode="bilinear",
                                                 align_corners=False))
    decoder = DeepLabV3Decoder(body.out_channels, out_channels=decoder_channels, atrous_rates=decoder_atrous_rates,
                               aspp_separable=decoder_aspp_separable, aspp_dropout=decoder_aspp_dropout)
    head = upsampling_head(decoder_channels, num_classes, stride, align_corners=layout == "smp")
    return DeepLabV3Model(body, decoder, head, aux_head=aux_head, num_classes=num_classes, in_channels=in_channels,
                          aux_params=aux_params, size_multiple=stride)
