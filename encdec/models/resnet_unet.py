"""U-Nets with course ResNet encoders: the Pet ResNet34-U-Net and the VOC ResNet-50 U-Net."""

from __future__ import annotations

import os
from typing import List, Optional, Union

import torch
from torch import Tensor, nn

from .._registry import ReferenceCheckpoint, register_model
from ..blocks import ConvBNAct, DecoderBlock, DoubleConv
from ..datasets.voc import VOC_CLASSES
from ..decoders.unet import UNetDecoder
from ..encoders.course import ResNetEncoder, basic_stage, bottleneck_stage
from ..normalization import IMAGENET_MEAN, IMAGENET_STD
from ..weights import remap_keys
from ._base import SegmentationModel

__all__ = ["ResNet50UNetDecoder", "resnet34_unet", "resnet50_unet"]

PathLike = Union[str, os.PathLike]


# Reference ResNet34-U-Net names -> encdec names. ``conv_x`` holds conv/BN at 0/1 and 3/4.
RESNET34_UNET_RULES = [
    (r"^encoder1\.", "encoder.stem."),
    (r"^encoder(\d)\.(\d+)\.conv_x\.([01])\.", lambda m: f"encoder.stages.{int(m[1]) - 2}.{m[2]}.conv1.{m[3]}."),
    (r"^encoder(\d)\.(\d+)\.conv_x\.([34])\.",
     lambda m: f"encoder.stages.{int(m[1]) - 2}.{m[2]}.conv2.{int(m[3]) - 3}."),
    (r"^encoder(\d)\.(\d+)\.down_sample\.", lambda m: f"encoder.stages.{int(m[1]) - 2}.{m[2]}.shortcut."),
    (r"^bridge\.", "encoder.stages.4.0."),
    (r"^decoder(\d)\.up\.", lambda m: f"decoder.blocks.{int(m[1]) - 1}.up."),
    (r"^decoder(\d)\.conv\.net\.", lambda m: f"decoder.blocks.{int(m[1]) - 1}.conv."),
    (r"^lastlayer\.", "head."),
]


def resnet34_unet_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference ResNet34-U-Net state dict (``encoder3.0.down_sample.0.weight`` ...) to encdec's names.

    Example:
        >>> import torch
        >>> list(resnet34_unet_filter({"encoder3.0.conv_x.4.weight": torch.zeros(1)}, None))
        ['encoder.stages.1.0.conv2.1.weight']
    """
    return remap_keys(state, RESNET34_UNET_RULES)


RESNET34_UNET_REFERENCE = ReferenceCheckpoint(
    "ResNet_UNet_best_model_90.pth", "Oxford-IIIT Pet (binary)", 2, 256,
    reached="Dice ~0.90-0.92 (by the reference's own formula)", class_names=("background", "pet"),
)


@register_model(
    task="segmentation", checkpoint_filter=resnet34_unet_filter, reference_checkpoints=(RESNET34_UNET_REFERENCE,),
)
def resnet34_unet(
    *, num_classes: int = 2, in_channels: int = 3, weights: Optional[PathLike] = None
) -> SegmentationModel:
    """The Oxford-IIIT Pet reference ResNet34-U-Net (binary segmentation, Dice about 0.90).

    A course ResNet-34 encoder (biased convolutions, ``BasicBlock(kind="course")``), a bridge
    (3x3 conv 512->1024, BN, ReLU, 2x2 max pool) at stride 64, five transposed-convolution ``DecoderBlock``s with
    bias-free, affine-free double convolutions and dropout 0.5 after the first four, and a head of a 2x2
    transposed convolution plus a 3x3 convolution. Input sides divisible by 64.

    Args:
        num_classes: Output channels.
        in_channels: Image channels.
        weights: A checkpoint (reference keys ``encoder1.0.weight`` ... ``lastlayer.1.weight``, or encdec's),
            loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.resnet34_unet().eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """
    bridge = nn.Sequential(ConvBNAct(512, 1024, 3, bias=False), nn.MaxPool2d(2, 2))
    stages = [
        basic_stage(64, 64, 3, 1, kind="course"),
        basic_stage(64, 128, 4, 2, kind="course"),
        basic_stage(128, 256, 6, 2, kind="course"),
        basic_stage(256, 512, 3, 2, kind="course"),
        bridge,
    ]
    encoder = ResNetEncoder(stages, in_channels=in_channels, stem_bias=True)
    pet = dict(upsample="transposed", bias=False, affine=False)
    blocks = [
        DecoderBlock(1024, 512, 512, **pet),
        DecoderBlock(512, 256, 256, **pet),
        DecoderBlock(256, 128, 128, **pet),
        DecoderBlock(128, 64, 64, **pet),
        DecoderBlock(64, 64, 64, **pet),
    ]
    head = nn.Sequential(nn.ConvTranspose2d(64, 64, 2, 2), nn.Conv2d(64, num_classes, 3, padding=1, bias=False))
    return SegmentationModel(encoder, UNetDecoder(blocks, dropout=0.5), head, num_classes=num_classes,
                             in_channels=in_channels, size_multiple=64)


class ResNet50UNetDecoder(nn.Module):
    """The VOC ResNet-50 U-Net decoder, top to bottom as the reference runs it.

    It takes the encoder's ``[out1 (stride 4), out2 (stride 8), out3 (stride 8)]``. Output sizes of the
    transposed convolutions come from the input (strides 4, 2, 1), not the reference's hard-coded 64/128/256.
    ``up_full`` is the reference's ``UnetConv2_2``, applied twice with the same weights.

    Example:
        >>> dec = ResNet50UNetDecoder()
        >>> feats = [torch.zeros(1, 64, 8, 8), torch.zeros(1, 256, 4, 4), torch.zeros(1, 512, 4, 4)]
        >>> dec(feats).shape
        torch.Size([1, 64, 32, 32])
    """

    def __init__(self) -> None:
        super().__init__()
        self.bridge = DoubleConv(512, 512)
        self.reduce1 = nn.Conv2d(512, 256, 3, padding=1)
        self.fuse1 = DoubleConv(512, 256)
        self.up1 = nn.ConvTranspose2d(256, 256, 3, stride=2, padding=1)
        self.reduce2 = nn.Conv2d(256, 64, 3, padding=1)
        self.up_full = nn.ConvTranspose2d(128, 128, 3, stride=2, padding=1)
        self.reduce3 = nn.Conv2d(128, 64, 3, padding=1)

    def forward(self, features: List[Tensor]) -> Tensor:
        out1, out2, out3 = features
        x = self.reduce1(self.bridge(out3))
        x = self.fuse1(torch.cat((x, out2), dim=1))
        x = self.up1(x, output_size=out1.shape[-2:])
        x = torch.cat((self.reduce2(x), out1), dim=1)
        h, w = out1.shape[-2:]
        x = self.up_full(x, output_size=(2 * h, 2 * w))
        x = self.up_full(x, output_size=(4 * h, 4 * w))
        return self.reduce3(x)


# Reference ResNet-50 U-Net names -> encdec names. ``UnetConv2_1`` is defined but never used in the reference
# forward, so its weights are dropped.
RESNET50_UNET_RULES = [
    (r"^layer1\.", "encoder.stem."),
    (r"^layer(\d)\.(\d+)\.layer\.(\d)\.", lambda m: f"encoder.stages.{int(m[1]) - 2}.{m[2]}.conv{int(m[3]) + 1}."),
    (r"^layer(\d)\.(\d+)\.(?:downsize|make_equal_channel)\.",
     lambda m: f"encoder.stages.{int(m[1]) - 2}.{m[2]}.shortcut."),
    (r"^bridge\.", "decoder.bridge."),
    (r"^UpConv1\.", "decoder.reduce1."),
    (r"^UnetConv1\.", "decoder.fuse1."),
    (r"^upconv2_1\.", "decoder.up1."),
    (r"^upconv2_2\.", "decoder.reduce2."),
    (r"^UnetConv2_2\.", "decoder.up_full."),
    (r"^UnetConv2_3\.", "decoder.reduce3."),
    (r"^UnetConv3\.", "head."),
]
RESNET50_UNET_UNUSED = [r"^UnetConv2_1\."]


def resnet50_unet_filter(state: dict, model: nn.Module) -> dict:
    """Rename a reference ResNet-50 U-Net state dict to encdec's names, dropping the unused ``UnetConv2_1``.

    Example:
        >>> import torch
        >>> sd = {"layer2.2.downsize.0.weight": torch.zeros(1), "UnetConv2_1.weight": torch.zeros(1)}
        >>> list(resnet50_unet_filter(sd, None))
        ['encoder.stages.0.2.shortcut.0.weight']
    """
    return remap_keys(state, RESNET50_UNET_RULES, drop=RESNET50_UNET_UNUSED)


RESNET50_UNET_REFERENCE = ReferenceCheckpoint(
    "UNet_resnet_course.pth", "Pascal VOC 2012", 22, 256, IMAGENET_MEAN, IMAGENET_STD,
    class_names=VOC_CLASSES + ("boundary",),
)

#: ``resnet50_unet``'s layouts: the course listing's (default) and the one encdec 0.1 built, by bottleneck kind.
RESNET50_UNET_VARIANTS = {"course": "course_voc", "narrow": "course_voc_narrow"}


@register_model(
    task="segmentation", checkpoint_filter=resnet50_unet_filter, reference_checkpoints=(RESNET50_UNET_REFERENCE,),
    variants=tuple(RESNET50_UNET_VARIANTS),
)
def resnet50_unet(
    *, num_classes: int = 22, in_channels: int = 3, variant: Optional[str] = None, weights: Optional[PathLike] = None
) -> SegmentationModel:
    """The Pascal VOC reference ``UNetWithResnet50Encoder`` (22 outputs).

    Encoder: a biased 7x7 stem, max pool, then course bottlenecks of the VOC kind (``Bottleneck(kind=
    "course_voc")``: no ReLU inside, ReLU after the sum, projection in every block, and, as the course listing
    builds them, inner convolutions as wide as the output in every block that keeps the resolution): ``layer2``
    ends with a stride-2 block, ``layer3`` keeps the resolution. Decoder: ``ResNet50UNetDecoder``. Output sizes are
    computed from the input, so any side divisible by 8 works (the reference ran 256x256 only). 22,605,718
    parameters with 22 outputs (the course's 22,642,646 less the never-used ``UnetConv2_1``).

    Args:
        num_classes: Output channels.
        in_channels: Image channels.
        variant: ``"course"``: the network the course listing prints, whose checkpoints the course saved.
            ``"narrow"``: the layout encdec 0.1 built, with ``middle_channels`` (64, 128) inside every block
            (11,006,614 parameters); its files keep loading. ``None`` (default) builds ``"course"``, and a
            checkpoint loaded later (``weights=``, :func:`encdec.load_weights`, :func:`encdec.from_pretrained`)
            picks the layout its shapes hold.
        weights: A checkpoint (reference keys ``layer1.0.weight`` ... ``UnetConv3.bias``; the unused
            ``UnetConv2_1.*`` entries are dropped and listed in the load report), loaded after building.

    Example:
        >>> import torch, encdec
        >>> encdec.resnet50_unet().eval()(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 22, 64, 64])
        >>> sum(p.numel() for p in encdec.resnet50_unet(variant="narrow").parameters())
        11006614
    """
    kind = RESNET50_UNET_VARIANTS[variant or "course"]
    layer2 = bottleneck_stage([(64, 64, 256, False), (256, 64, 256, False), (256, 64, 256, True)], kind)
    layer3 = bottleneck_stage([(256, 128, 512, False)] + [(512, 128, 512, False)] * 3, kind)
    encoder = ResNetEncoder([layer2, layer3], in_channels=in_channels, stem_bias=True, tap_stem="post_pool")
    return SegmentationModel(encoder, ResNet50UNetDecoder(), nn.Conv2d(64, num_classes, 1), num_classes=num_classes,
                             in_channels=in_channels, size_multiple=8)
