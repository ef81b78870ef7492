"""U-Nets: the VOC reference U-Net, the Pet reference U-Net, and U-Nets on any encoder."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import ReferenceCheckpoint, register_model
from ..blocks import DecoderBlock, DoubleConv
from ..datasets.voc import VOC_CLASSES
from ..decoders.unet import UNetDecoder
from ..encoders import create_encoder
from ..normalization import IMAGENET_MEAN, IMAGENET_STD
from ..weights import remap_keys
from ._base import SegmentationModel
from .encoder_decoder import decoder_norm, pyramid_multiple, smp_filter
from .encoder_decoder import encoder_depth as depth_of
from .smp_config import check_smp_config

__all__ = ["UNetEncoder", "unet", "unet_pet"]

PathLike = Union[str, os.PathLike]


class UNetEncoder(nn.Module):
    """The U-Net contracting path: a ``DoubleConv`` per level with 2x2 max pooling between levels.

    Args:
        in_channels: Image channels.
        widths: Output channels per level, high to low resolution.
        pool: ``"before"``: pool, then convolve (the classic U-Net and the VOC reference). ``"after"``: convolve,
            then pool, as the Pet reference's ``down`` blocks do, so each level's output is already pooled.
        bias: Convolution bias.
        affine: BatchNorm affine parameters.

    Example:
        >>> enc = UNetEncoder(3, (8, 16, 32))
        >>> [f.shape[-1] for f in enc(torch.zeros(1, 3, 32, 32))]
        [32, 16, 8]
    """

    def __init__(
        self, in_channels: int, widths: Sequence[int], *, pool: str = "before", bias: bool = True, affine: bool = True
    ) -> None:
        super().__init__()
        if pool not in ("before", "after"):
            raise ValueError(f"pool must be 'before' or 'after', got {pool!r}")
        channels = [in_channels, *widths]
        self.stages = nn.ModuleList(
            DoubleConv(i, o, bias=bias, affine=affine) for i, o in zip(channels[:-1], channels[1:])
        )
        self.pool_before = pool == "before"
        self.name = "U-Net contracting path"
        self.out_channels = list(widths)
        self.strides = [2**i for i in range(len(widths))]  # the first level is never pooled
        self.left_out: tuple = ()
        self.size_multiple, self.fixed_size = 1, None

    def forward(self, x: Tensor) -> List[Tensor]:
        features = []
        for i, stage in enumerate(self.stages):
            if i and self.pool_before:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            if i and not self.pool_before:
                x = F.max_pool2d(x, 2)
            features.append(x)
        return features


# Reference VOC U-Net names -> encdec names.
VOC_UNET_RULES = [
    (r"^convDown(\d)\.", lambda m: f"encoder.stages.{int(m[1]) - 1}."),
    (r"^convUp_fin\.", "head."),
    (r"^convUp(\d)\.", lambda m: f"decoder.blocks.{4 - int(m[1])}.conv."),
]

# Reference Pet U-Net names -> encdec names; the pool inside ``maxpool_conv`` holds no weights.
PET_UNET_RULES = [
    (r"^inC\.net\.", "encoder.stages.0."),
    (r"^down(\d)\.maxpool_conv\.0\.net\.", lambda m: f"encoder.stages.{m[1]}."),
    (r"^up(\d)\.conv\.net\.", lambda m: f"decoder.blocks.{int(m[1]) - 1}.conv."),
    (r"^outC\.conv\.", "head."),
]


def voc_unet_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference VOC U-Net state dict (``convDown1.0.weight`` ...) to encdec's names.

    Example:
        >>> import torch
        >>> list(voc_unet_filter({"convUp4.3.weight": torch.zeros(1)}, None))
        ['decoder.blocks.0.conv.3.weight']
    """
    return remap_keys(state, VOC_UNET_RULES)


def pet_unet_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference Pet U-Net state dict (``inC.net.0.weight`` ...) to encdec's names.

    Example:
        >>> import torch
        >>> list(pet_unet_filter({"down2.maxpool_conv.0.net.1.running_mean": torch.zeros(1)}, None))
        ['encoder.stages.2.1.running_mean']
    """
    return remap_keys(state, PET_UNET_RULES)


def _encoder_unet(
    encoder_name: str, num_classes: int, in_channels: int, decoder_channels: Sequence[int],
    encoder_weights: Optional[PathLike], encoder_depth: int, interpolation: str, attention: Optional[str],
    use_norm: Any, aux_params: Optional[Dict[str, Any]],
) -> SegmentationModel:
    if interpolation not in ("nearest", "bilinear"):
        raise ValueError(f"decoder_interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
    if attention not in (None, "scse"):
        raise ValueError(f"decoder_attention_type={attention!r} is not supported; use None or 'scse'")
    norm = decoder_norm(use_norm)
    encoder = create_encoder(encoder_name, in_channels=in_channels, weights=encoder_weights,
                             depth=depth_of(encoder_depth))
    multiple = pyramid_multiple(encoder, "unet", len(encoder.strides))
    levels = multiple.bit_length() - 1  # one decoder block per halving, back to the input's resolution
    if len(decoder_channels) != levels:
        raise ValueError(f"decoder_channels needs {levels} entries for encoder {encoder_name!r} (stride {multiple}), "
                         f"got {len(decoder_channels)}")
    channels = encoder.out_channels
    skips = (channels[:-1][::-1] + [0] * levels)[:levels]
    ins = [channels[-1], *decoder_channels[:-1]]
    # smp concatenates an empty map where the encoder has none (a timm encoder without a stride-2 map), so every
    # block but the last attends to its input
    blocks = [DecoderBlock(i, s, o, upsample=interpolation, align_corners=False, bias=False, norm=norm,
                           attention=attention, attend_without_skip=n < levels - 1)
              for n, (i, s, o) in enumerate(zip(ins, skips, decoder_channels))]
    head = nn.Conv2d(decoder_channels[-1], num_classes, 3, padding=1)
    return SegmentationModel(encoder, UNetDecoder(blocks), head, num_classes=num_classes, in_channels=in_channels,
                             size_multiple=multiple, aux_params=aux_params)


# smp Unet names -> encdec names: smp's Conv2dReLU units hold conv/norm at 0/1, encdec's DoubleConv at 0/1, 3/4.
SMP_UNET_RULES = [
    (r"^decoder\.blocks\.(\d+)\.conv1\.([01])\.", lambda m: f"decoder.blocks.{m[1]}.conv.{m[2]}."),
    (r"^decoder\.blocks\.(\d+)\.conv2\.([01])\.", lambda m: f"decoder.blocks.{m[1]}.conv.{int(m[2]) + 3}."),
    (r"^decoder\.blocks\.(\d+)\.attention([12])\.attention\.",
     lambda m: f"decoder.blocks.{m[1]}.attention{m[2]}."),
]
_smp_unet_filter = smp_filter(SMP_UNET_RULES, "head.")


def _unet_filter(state: dict, model: nn.Module) -> dict:
    if model is not None and model.encdec_config["kwargs"].get("encoder"):
        return _smp_unet_filter(state, model)
    return voc_unet_filter(state, model)


VOC_UNET_REFERENCE = ReferenceCheckpoint(
    "UNet_best_model.pth", "Pascal VOC 2012", 22, 256, IMAGENET_MEAN, IMAGENET_STD,
    "pixel accuracy; the boundary is class 21, ignored by the loss", requires=(("encoder", None),),
    class_names=VOC_CLASSES + ("boundary",),
)


@register_model(
    task="segmentation", checkpoint_filter=_unet_filter, reference_checkpoints=(VOC_UNET_REFERENCE,),
    config_check=check_smp_config,
)
def unet(
    *,
    num_classes: Optional[int] = None,
    in_channels: int = 3,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    encoder: Optional[str] = None,
    encoder_weights: Optional[PathLike] = None,
    decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
    encoder_depth: int = 5,
    decoder_interpolation: str = "nearest",
    decoder_attention_type: Optional[str] = None,
    decoder_use_norm: Union[bool, str] = "batchnorm",
    aux_params: Optional[Dict[str, Any]] = None,
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """U-Net: the Pascal VOC reference (22 outputs), or a U-Net on a torchvision ResNet encoder.

    Without ``encoder``: five ``DoubleConv`` levels (``widths``) with max pooling before levels 2-5, bilinear
    (align_corners=True) upsampling, ``cat(upsampled, skip)``, and a 1x1 head; input sides divisible by 16.
    Loads the reference checkpoints (``convDown1.0.weight`` ... ``convUp_fin.bias``).

    With ``encoder=NAME`` (any of :func:`encdec.encoders.list_encoders`, or ``"timm:NAME"``): the encoder's maps
    feed nearest-upsampling ``DecoderBlock``s of ``decoder_channels`` (one per halving of its coarsest stride,
    each taking the skip connection of its resolution when the encoder has one) and a 3x3 head: the
    segmentation_models_pytorch ``Unet``, whose checkpoints on ResNet encoders load. Input sides divisible by
    the encoder's coarsest stride (32). ``encoder_weights`` loads an ImageNet file such as
    ``resnet34-b627a593.pth``.

    Args:
        num_classes: Output channels. ``None`` (the default) gives 22 without an encoder, what the VOC reference
            checkpoint needs (21 classes + the boundary class), and 2 with one: the default of every builder on the
            encoder contract (``fpn``, ``deeplabv3plus``, ``linknet``, ...), background and one foreground class.
            2 rather than smp's 1, because two outputs train with ``fit``'s default cross-entropy on a 0/1 mask
            as they are, where one output needs a binary loss; either way the number recorded with the model is
            the one it was built with.
        in_channels: Image channels.
        widths: Channels of the five reference levels (``(8, 16, 32, 64, 128)`` gives a tiny U-Net).
        encoder: An encoder name, or ``None`` for the reference U-Net.
        encoder_weights: torchvision state-dict file for the encoder.
        decoder_channels: Decoder block widths with an encoder (one per halving of the coarsest stride kept).
        encoder_depth: With an encoder: halvings kept (smp's ``encoder_depth``; 4 keeps the maps down to stride
            16 and needs four ``decoder_channels``).
        decoder_interpolation: With an encoder: ``"nearest"`` or ``"bilinear"`` (pixel centres, as smp) upsampling.
        decoder_attention_type: With an encoder: ``"scse"`` adds smp's squeeze-and-excitation to every block.
        decoder_use_norm: With an encoder: ``True``/``"batchnorm"``, or ``False``/``"identity"`` (no norm).
        aux_params: smp's auxiliary classification head on the encoder's last map (``{"classes": N}``, and
            ``pooling``, ``dropout``, ``activation``); :meth:`~encdec.models.SegmentationModel.forward_with_labels`
            returns its output, and ``fit(aux_loss_weight=...)`` trains it.
        weights: A checkpoint of the whole model (reference layout, encdec layout or safetensors), loaded
            after building.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128)).eval()
        >>> model(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 3, 64, 64])
        >>> encdec.unet(encoder="resnet18")(torch.zeros(1, 3, 64, 64)).shape  # 2 outputs by default on an encoder
        torch.Size([1, 2, 64, 64])
        >>> encdec.unet().num_classes  # the VOC reference's 22 without one
        22
    """
    if num_classes is None:
        num_classes = 22 if encoder is None else 2
    if encoder is not None:
        model = _encoder_unet(encoder, num_classes, in_channels, tuple(decoder_channels), encoder_weights,
                              encoder_depth, decoder_interpolation, decoder_attention_type, decoder_use_norm,
                              aux_params)
        model.unused_arguments = ("widths",)  # left out of the recorded configuration
    else:
        if encoder_weights is not None:
            raise ValueError("encoder_weights needs an encoder, e.g. unet(encoder='resnet34', encoder_weights=...)")
        given = {k: v for k, v, default in (
            ("encoder_depth", encoder_depth, 5), ("decoder_interpolation", decoder_interpolation, "nearest"),
            ("decoder_attention_type", decoder_attention_type, None), ("decoder_use_norm", decoder_use_norm,
                                                                       "batchnorm"), ("aux_params", aux_params, None))
            if v != default}
        if given:
            raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in given.items())}: options of the U-Net on an "
                             "encoder (pass encoder=...); the reference U-Net has bilinear upsampling and BatchNorm")
        if len(widths) != 5:
            raise ValueError(f"widths needs 5 entries (one per level), got {len(widths)}")
        w = tuple(widths)
        blocks = [DecoderBlock(w[i + 1], w[i], w[i]) for i in reversed(range(4))]
        model = SegmentationModel(
            UNetEncoder(in_channels, w), UNetDecoder(blocks), nn.Conv2d(w[0], num_classes, 1),
            num_classes=num_classes, in_channels=in_channels, size_multiple=16,
        )
        model.unused_arguments = ("decoder_channels", "encoder_depth", "decoder_interpolation",
                                  "decoder_attention_type", "decoder_use_norm", "aux_params")
    model.resolved_arguments = {"num_classes": num_classes}  # recorded as built, not as None
    return model


UNET_PET_REFERENCE = ReferenceCheckpoint(
    "UNet_best_model_90.pth", "Oxford-IIIT Pet (binary)", 2, 256, reached="Dice ~0.90 (by the reference's own formula)",
    class_names=("background", "pet"),
)


@register_model(
    task="segmentation", checkpoint_filter=pet_unet_filter, reference_checkpoints=(UNET_PET_REFERENCE,),
)
def unet_pet(
    *,
    num_classes: int = 2,
    in_channels: int = 3,
    widths: Sequence[int] = (64, 128, 256, 512, 1024),
    weights: Optional[PathLike] = None,
) -> SegmentationModel:
    """The Oxford-IIIT Pet reference U-Net (binary segmentation, 2 outputs).

    Differs from ``unet``: bias-free convolutions with affine-free BatchNorm, max pooling **after** each of the
    four down blocks, and ``cat(skip, upsampled)`` with the upsampled map zero-padded to the skip's size, so any
    side of at least 16 works.

    Args:
        num_classes: Output channels (the reference hard-codes 2).
        in_channels: Image channels.
        widths: Channels of the five levels.
        weights: A checkpoint (reference keys ``inC.net.0.weight`` ... ``outC.conv.bias``, or encdec's).

    Example:
        >>> import torch, encdec
        >>> encdec.unet_pet(widths=(8, 16, 32, 64, 128))(torch.zeros(1, 3, 40, 40)).shape
        torch.Size([1, 2, 40, 40])
    """
    if len(widths) != 5:
        raise ValueError(f"widths needs 5 entries (one per level), got {len(widths)}")
    w = tuple(widths)
    blocks = [DecoderBlock(w[i + 1], w[i], w[i], skip_first=True, pad_to_skip=True, bias=False, affine=False)
              for i in reversed(range(4))]
    model = SegmentationModel(
        UNetEncoder(in_channels, w, pool="after", bias=False, affine=False), UNetDecoder(blocks),
        nn.Conv2d(w[0], num_classes, 1), num_classes=num_classes, in_channels=in_channels, size_multiple=1,
        min_size=16,
    )
    return model
