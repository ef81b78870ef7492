"""What the encoder-based segmentation builders (``unet(encoder=...)``, ``fpn``, ``deeplabv3plus``) share: the
model around an encoder and a decoder, and the conversion of segmentation_models_pytorch (smp) checkpoints.

smp models are ``encoder -> decoder -> segmentation_head``. Their torchvision-style encoders (``resnet*``,
``resnext*``) name their modules as torchvision does, and encdec's :class:`~encdec.encoders.TorchvisionEncoder`
keeps those names, so ``encoder.*`` entries load as they are; timm (``tu-NAME``) encoders are ``encoder.model.*``
in both. Decoder and head names are converted by each builder's table.
"""

from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence

from torch import nn

from ..encoders import Encoder, EncoderError, TorchvisionEncoder, check_pyramid, pyramid_stride
from ..weights import WeightsError, remap_keys

__all__ = ["DECODER_NORMS", "SMP_ENCODERS", "check_stride4_options", "decoder_norm", "encoder_depth", "full_pyramid",
           "pyramid_multiple",
           "smp_conv_pair_rules", "smp_filter", "upsampling_head"]

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


def _check_smp_options(state: dict, model: nn.Module) -> None:
    """Name the smp option a checkpoint was built with when the model was built without it (its keys tell)."""
    own = model.state_dict()
    found = []
    if any(".attention1." in k or ".attention2." in k for k in state) and not any(".attention1." in k for k in own):
        found.append("decoder_attention_type='scse'")
    normless = [k for k in own if k.startswith("decoder.") and k.endswith(".running_mean")
                and k[: -len("1.running_mean")] + "0.bias" in state and k not in state]
    if normless:
        found.append("decoder_use_norm=False")
    if found:
        name = model.encdec_config["architecture"] if getattr(model, "encdec_config", None) else "the model"
        raise WeightsError(f"this smp checkpoint was built with {' and '.join(found)}; build {name} with "
                           f"{', '.join(found)} to load it")


#: smp's ``decoder_use_norm`` values encdec builds: with BatchNorm, or with none (biased convolutions).
DECODER_NORMS = {True: True, "batchnorm": True, False: False, "identity": False}


def decoder_norm(value: Any) -> bool:
    """Whether smp's ``decoder_use_norm`` value asks for BatchNorm (``True``) or none (``False``); other norms are
    refused by name.

    Example:
        >>> decoder_norm("batchnorm"), decoder_norm(False)
        (True, False)
    """
    if isinstance(value, (bool, str)) and value in DECODER_NORMS:
        return DECODER_NORMS[value]
    raise ValueError(f"decoder_use_norm={value!r} is not supported yet: encdec builds True / 'batchnorm' (BatchNorm) "
                     "and False / 'identity' (none)")


def encoder_depth(value: int) -> Optional[int]:
    """The ``depth`` to build an encoder with for smp's ``encoder_depth`` (5, smp's default, keeps every map).

    Example:
        >>> encoder_depth(5), encoder_depth(4)
        (None, 4)
    """
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise ValueError(f"encoder_depth must be a whole number from 1 to 5 (halvings of the input kept), "
                         f"got {value!r}")
    return None if value == 5 else value


def check_stride4_options(builder: str, encoder_depth: int, upsampling: int) -> None:
    """The two options of a decoder whose output is at stride 4 (PAN, UPerNet, Segformer), checked by name: at
    least three halvings kept (smp's rule), and a head that upsamples x4.

    Example:
        >>> check_stride4_options("upernet", 5, 4)
        >>> try:
        ...     check_stride4_options("upernet", 5, 2)
        ... except ValueError as error:
        ...     print(error)
        upsampling=2 would not bring upernet's stride-4 output back to the input size; pass upsampling=4
    """
    if encoder_depth not in (3, 4, 5):
        raise ValueError(f"encoder_depth must be 3, 4 or 5 for {builder}, got {encoder_depth!r}")
    if upsampling != 4:
        raise ValueError(f"upsampling={upsampling} would not bring {builder}'s stride-4 output back to the input "
                         "size; pass upsampling=4")


def upsampling_head(in_channels: int, num_classes: int, scale: int, kernel_size: int = 1, *,
                    align_corners: bool = True) -> nn.Sequential:
    """smp's segmentation head: a convolution to ``num_classes``, then bilinear upsampling by ``scale``
    (``align_corners=True``; torchvision's segmentation models sample pixel centres, ``align_corners=False``),
    indexed ``0`` and ``1``.

    Example:
        >>> upsampling_head(8, 2, 4)(torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 2, 16, 16])
    """
    up = nn.Upsample(scale_factor=scale, mode="bilinear", align_corners=align_corners) if scale > 1 else nn.Identity()
    return nn.Sequential(nn.Conv2d(in_channels, num_classes, kernel_size, padding=kernel_size // 2), up)


def pyramid_multiple(encoder: nn.Module, decoder: str, levels: int) -> int:
    """The input-size multiple of a decoder climbing the encoder's last ``levels`` maps (their coarsest stride).

    Example:
        >>> from encdec.encoders import create_encoder
        >>> pyramid_multiple(create_encoder("resnet18"), "fpn", 4)
        32
    """
    name = encoder.name
    return pyramid_stride(check_pyramid(encoder.strides, encoder.out_channels, name=name, decoder=decoder,
                                        levels=levels))


def smp_conv_pair_rules(block: str) -> List[tuple]:
    r"""Rules renaming smp's two ``Conv2dReLU`` units ``conv1`` and ``conv2`` (conv at 0, norm at 1) of the blocks
    whose names match the regular expression ``block`` to encdec's one ``DoubleConv`` ``conv`` (0/1 and 3/4),
    and smp's attention wrappers (``attention1.attention.``) to encdec's ``attention1.``.

    Example:
        >>> import torch
        >>> from encdec.weights import remap_keys
        >>> rules = smp_conv_pair_rules(r"decoder\.blocks\.\d+")
        >>> list(remap_keys({"decoder.blocks.3.conv2.1.bias": torch.zeros(1)}, rules))
        ['decoder.blocks.3.conv.4.bias']
    """
    return [
        (rf"^({block})\.conv1\.([01])\.", lambda m: f"{m[1]}.conv.{m[2]}."),
        (rf"^({block})\.conv2\.([01])\.", lambda m: f"{m[1]}.conv.{int(m[2]) + 3}."),
        (rf"^({block})\.attention([12])\.attention\.", lambda m: f"{m[1]}.attention{m[2]}."),
    ]


def full_pyramid(encoder: nn.Module, decoder: str) -> int:
    """The input-size multiple of a decoder that needs one encoder map per halving from stride 2 (UNet++): strides
    2, 4, 8, ... with none missing.

    Raises:
        EncoderError: The encoder lacks a map at stride 2 (ConvNeXt, Swin) or has one at stride 1 (VGG).

    Example:
        >>> from encdec.encoders import create_encoder
        >>> full_pyramid(create_encoder("resnet18"), "unetplusplus")
        32
    """
    strides = list(encoder.strides)
    name = encoder.name
    if strides != [2 ** (i + 1) for i in range(len(strides))]:
        raise EncoderError(f"{decoder} needs one encoder map per halving from stride 2 (2, 4, 8, ...); {name} gives "
                           f"strides {strides}; use unet or fpn with it")
    return pyramid_multiple(encoder, decoder, len(strides))


def smp_filter(decoder_rules: Sequence[tuple], head: str) -> Callable[[dict, nn.Module], dict]:
    """A checkpoint filter converting smp's names (``segmentation_head.0.*`` and the decoder's) to encdec's.

    States without ``segmentation_head.`` entries pass through, after converting encdec's earlier names of
    ``unet(encoder="resnet*")``. smp's auxiliary ``classification_head`` loads into a model built with the same
    ``aux_params`` and is dropped (and listed as dropped) by one built without, and
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
        left_out = model.encoder.left_out if isinstance(getattr(model, "encoder", None), Encoder) else ()
        heads = [] if getattr(model, "classification_head", None) is not None else [r"^classification_head\."]
        drop = [*heads, *(rf"^encoder\.{re.escape(step)}\." for step in left_out)]
        out = remap_keys(state, rules, drop=drop)
        if model is not None:
            _check_smp_encoder(out, model)
            _check_smp_options(out, model)
        return out

    return convert


def _has_torchvision_encoder(model: nn.Module) -> bool:
    return model is not None and isinstance(getattr(model, "encoder", None), TorchvisionEncoder)


def _check_smp_encoder(state: dict, model: nn.Module) -> None:
    """An smp checkpoint loads only into an encoder whose taps are proven equal to smp's: names and shapes that fit
    are no evidence (smp's densenet taps its maps after each transition's BatchNorm and ReLU, encdec's at the dense
    blocks' outputs: the same tensors give other outputs)."""
    encoder = model.encoder.name
    if isinstance(model.encoder, TorchvisionEncoder) and encoder not in SMP_ENCODERS:
        raise WeightsError(
            f"this is an smp checkpoint, and encdec's {encoder!r} encoder is not proven to tap the feature maps smp's "
            f"encoder of that name taps, so its tensors could load and give other outputs; smp checkpoints load for "
            f"smp encoders {', '.join(SMP_ENCODERS)} (pass the same name as encoder=) and for timm encoders "
            "('tu-NAME' in smp is encoder='timm:NAME' here)"
        )
    ours = {k for k in model.state_dict() if k.startswith("encoder.")}
    theirs = [k for k in state if k.startswith("encoder.")]
    known = sum(k in ours for k in theirs)
    if theirs and known == len(theirs):
        return
    shown: List[str] = theirs[:3]
    raise WeightsError(
        f"this smp checkpoint's encoder is not encdec's {encoder!r} (its encoder entries: {', '.join(shown)}, ...). "
        f"smp checkpoints load for smp encoders {', '.join(SMP_ENCODERS)} (pass the same name as encoder=) and for "
        "timm encoders ('tu-NAME' in smp is encoder='timm:NAME' here)."
    )
