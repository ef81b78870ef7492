"""What the encoder-based segmentation builders (``unet(encoder=...)``, ``fpn``, ``deeplabv3plus``) share: the
model around an encoder and a decoder, and the conversion of segmentation_models_pytorch (smp) checkpoints.

smp models are ``encoder -> decoder -> segmentation_head``. Their torchvision-style encoders (``resnet*``,
``resnext*``) name their modules as torchvision does, and encdec's :class:`~encdec.encoders.TorchvisionEncoder`
keeps those names, so ``encoder.*`` entries load as they are; timm (``tu-NAME``) encoders are ``encoder.model.*``
in both. Decoder and head names are converted by each builder's table.
"""

from __future__ import annotations

import re
from typing import Callable, List, Sequence

from torch import nn

from ..encoders import TorchvisionEncoder, check_pyramid, pyramid_stride
from ..weights import WeightsError, remap_keys

__all__ = ["SMP_ENCODERS", "pyramid_multiple", "smp_filter", "upsampling_head"]

#: smp encoders whose checkpoints load into the encdec encoder of the same name (tested against smp itself).
SMP_ENCODERS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                "resnext101_32x8d")

# encdec's own names of ``unet(encoder="resnet*")`` before its encoder became torchvision's module.
_COURSE_RESNET_RULES = [
    (r"^encoder\.stem\.0\.", "encoder.conv1."),
    (r"^encoder\.stem\.1\.", "encoder.bn1."),
    (r"^encoder\.stages\.(\d)\.(\d+)\.conv(\d)\.0\.", lambda m: f"encoder.layer{int(m[1]) + 1}.{m[2]}.conv{m[3]}."),
    (r"^encoder\.stages\.(\d)\.(\d+)\.conv(\d)\.1\.", lambda m: f"encoder.layer{int(m[1]) + 1}.{m[2]}.bn{m[3]}."),
    (r"^encoder\.stages\.(\d)\.(\d+)\.shortcut\.", lambda m: f"encoder.layer{int(m[1]) + 1}.{m[2]}.downsample."),
]


def upsampling_head(in_channels: int, num_classes: int, scale: int, kernel_size: int = 1) -> nn.Sequential:
    """smp's segmentation head: a convolution to ``num_classes``, then bilinear upsampling by ``scale``
    (``align_corners=True``), indexed ``0`` and ``1``.

    Example:
        >>> upsampling_head(8, 2, 4)(torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 2, 16, 16])
    """
    up = nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=True) if scale > 1 else nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, num_classes, kernel_size, padding=kernel_size // 2), up)


def pyramid_multiple(encoder: nn.Module, decoder: str, levels: int) -> int:
    """The input-size multiple of a decoder climbing the encoder's last ``levels`` maps (their coarsest stride).

    Example:
        >>> from encdec.encoders import create_encoder
        >>> pyramid_multiple(create_encoder("resnet18"), "fpn", 4)
        32
    """
    name = getattr(encoder, "name", type(encoder).__name__)
    return pyramid_stride(check_pyramid(encoder.strides, encoder.out_channels, name=name, decoder=decoder,
                                        levels=levels))


def smp_filter(decoder_rules: Sequence[tuple], head: str) -> Callable[[dict, nn.Module], dict]:
    """A checkpoint filter converting smp's names (``segmentation_head.0.*`` and the decoder's) to encdec's.

    States without ``segmentation_head.`` entries pass through, after converting encdec's earlier names of
    ``unet(encoder="resnet*")``. smp's auxiliary ``classification_head`` is dropped (and listed as dropped), and
    so are the weights of encoder stages smp keeps but does not run (``encoder_depth`` < 5), which an encdec
    encoder of limited ``depth`` does not build (its ``left_out``). An smp encoder other than the model's is
    refused, naming the smp encoders that load.

    Example:
        >>> import torch
        >>> convert = smp_filter([(r"^decoder\\.p5\\.", "decoder.top.")], "head.0.")
        >>> sorted(convert({"decoder.p5.weight": torch.zeros(1), "segmentation_head.0.bias": torch.zeros(1)}, None))
        ['decoder.top.weight', 'head.0.bias']
    """
    rules = [(r"^segmentation_head\.0\.", head), *decoder_rules]

    def convert(state: dict, model: nn.Module) -> dict:
        if not any(k.startswith("segmentation_head.") for k in state):
            return remap_keys(state, _COURSE_RESNET_RULES) if _has_torchvision_encoder(model) else state
        left_out = getattr(getattr(model, "encoder", None), "left_out", ())
        drop = [r"^classification_head\.", *(rf"^encoder\.{re.escape(step)}\." for step in left_out)]
        out = remap_keys(state, rules, drop=drop)
        if model is not None:
            _check_smp_encoder(out, model)
        return out

    return convert


def _has_torchvision_encoder(model: nn.Module) -> bool:
    return model is not None and isinstance(getattr(model, "encoder", None), TorchvisionEncoder)


def _check_smp_encoder(state: dict, model: nn.Module) -> None:
    ours = {k for k in model.state_dict() if k.startswith("encoder.")}
    theirs = [k for k in state if k.startswith("encoder.")]
    known = sum(k in ours for k in theirs)
    if theirs and known >= len(theirs) / 2:
        return
    encoder = getattr(model.encoder, "name", type(model.encoder).__name__)
    shown: List[str] = theirs[:3]
    raise WeightsError(
        f"this smp checkpoint's encoder is not encdec's {encoder!r} (its encoder entries: {', '.join(shown)}, ...). "
        f"smp checkpoints load for smp encoders {', '.join(SMP_ENCODERS)} (pass the same name as encoder=) and for "
        "timm encoders ('tu-NAME' in smp is encoder='timm:NAME' here)."
    )
