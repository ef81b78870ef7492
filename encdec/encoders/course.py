"""The course ResNet encoders, built from the shared blocks, and the torchvision ResNet key map.

One ``ResNetEncoder`` serves every ResNet-shaped network here: torchvision's ResNet-18/34/50 (used by
``unet(encoder=...)`` and ``resnet18_classifier``) and the course encoders of ``resnet34_unet``,
``resnet50_unet`` and ``resnet50_cifar``. It returns its feature maps from high to low resolution.
"""

from __future__ import annotations

import os
from typing import List, Sequence, Tuple, Union

from torch import Tensor, nn

from ..blocks import BasicBlock, Bottleneck, ConvBNAct
from ..weights import load_state_dict, read_state_dict, remap_keys

__all__ = [
    "ResNetEncoder",
    "basic_stage",
    "bottleneck_stage",
    "torchvision_resnet_encoder",
    "torchvision_resnet_rules",
    "load_torchvision_encoder",
]


class ResNetEncoder(nn.Module):
    """A 7x7 stride-2 stem, a 3x3 stride-2 max pool, then stages of residual blocks.

    Args:
        stages: The stages, each an ``nn.Sequential`` of blocks; their outputs are returned in order.
        in_channels: Image channels.
        stem_channels: Channels of the stem convolution.
        stem_bias: Bias on the stem convolution (the course encoders have one, torchvision's does not).
        tap_stem: Which stem output is the first feature map: ``"pre_pool"`` (stride 2, as U-Nets with
            torchvision encoders and the Pet ResNet34-U-Net use) or ``"post_pool"`` (stride 4, as the VOC
            ResNet-50 U-Net uses).

    Example:
        >>> enc = torchvision_resnet_encoder("resnet18")
        >>> [f.shape[1] for f in enc(torch.zeros(1, 3, 64, 64))]
        [64, 64, 128, 256, 512]
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        in_channels: int = 3,
        stem_channels: int = 64,
        stem_bias: bool = False,
        tap_stem: str = "pre_pool",
    ) -> None:
        super().__init__()
        if tap_stem not in ("pre_pool", "post_pool"):
            raise ValueError(f"tap_stem must be 'pre_pool' or 'post_pool', got {tap_stem!r}")
        self.stem = ConvBNAct(in_channels, stem_channels, 7, 2, 3, bias=stem_bias)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.stages = nn.ModuleList(stages)
        self.tap_stem = tap_stem
        self.name = f"course ResNet ({len(stages)} stages)"
        self.left_out: tuple = ()
        self.size_multiple, self.fixed_size = 1, None
        self.out_channels: List[int] = [stem_channels] + [_last_channels(s) for s in stages]
        self.strides: List[int] = [2 if tap_stem == "pre_pool" else 4]
        stride = 4
        for stage in stages:
            stride *= _stage_stride(stage)
            self.strides.append(stride)

    def forward(self, x: Tensor) -> List[Tensor]:
        x = self.stem(x)
        pooled = self.pool(x)
        features = [x if self.tap_stem == "pre_pool" else pooled]
        x = pooled
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def basic_stage(in_channels: int, out_channels: int, depth: int, stride: int, *, kind: str = "torchvision"
                ) -> nn.Sequential:
    """A ResNet-18/34 stage: ``depth`` ``BasicBlock``s of one kind, the first with ``stride``.

    Example:
        >>> len(basic_stage(64, 128, 4, 2, kind="course"))
        4
    """
    blocks = [BasicBlock(in_channels, out_channels, stride, kind=kind)]
    blocks += [BasicBlock(out_channels, out_channels, kind=kind) for _ in range(depth - 1)]
    return nn.Sequential(*blocks)


def bottleneck_stage(specs: Sequence[Tuple[int, int, int, bool]], kind: str) -> nn.Sequential:
    """A stage of ``Bottleneck``s from ``(in, mid, out, downsample)`` tuples (downsample means stride 2), as the
    course ResNet-50 variants list their blocks.

    Example:
        >>> len(bottleneck_stage([(64, 64, 256, False), (256, 64, 256, True)], "course_voc"))
        2
    """
    return nn.Sequential(*(Bottleneck(i, m, o, 2 if down else 1, kind=kind) for i, m, o, down in specs))


def _stage_stride(stage: nn.Module) -> int:
    """How much a stage downsamples: per block, the largest stride of its convolutions and pools."""
    total = 1
    for block in stage.children():
        layers = [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
        strides = [m.stride if isinstance(m.stride, int) else max(m.stride) for m in layers]
        total *= max(strides, default=1)
    return total


def _last_channels(stage: nn.Module) -> int:
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels if convs else 0


# (block, blocks per stage, mid widths, out widths)
_TORCHVISION_RESNETS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}


def torchvision_resnet_encoder(name: str, *, in_channels: int = 3) -> ResNetEncoder:
    """torchvision's ResNet-18/34/50 as a ``ResNetEncoder`` (feature maps at strides 2, 4, 8, 16, 32).

    Args:
        name: ``"resnet18"``, ``"resnet34"`` or ``"resnet50"``.
        in_channels: Image channels.

    Example:
        >>> torchvision_resnet_encoder("resnet50").out_channels
        [64, 256, 512, 1024, 2048]
    """
    if name not in _TORCHVISION_RESNETS:
        raise ValueError(f"encoder must be one of {sorted(_TORCHVISION_RESNETS)}, got {name!r}")
    block, depths = _TORCHVISION_RESNETS[name]
    stages: List[nn.Module] = []
    in_ch = 64
    for i, depth in enumerate(depths):
        width = 64 * 2**i
        stride = 1 if i == 0 else 2
        blocks: List[nn.Module] = []
        for j in range(depth):
            s = stride if j == 0 else 1
            if block == "basic":
                blocks.append(BasicBlock(in_ch, width, s))
                in_ch = width
            else:
                blocks.append(Bottleneck(in_ch, width, width * 4, s))
                in_ch = width * 4
        stages.append(nn.Sequential(*blocks))
    return ResNetEncoder(stages, in_channels=in_channels)


def torchvision_resnet_rules(prefix: str = "") -> list:
    """Key rules from torchvision ResNet state-dict names to ``ResNetEncoder`` names under ``prefix``.

    Example:
        >>> import torch
        >>> list(remap_keys({"layer2.0.downsample.1.weight": torch.zeros(1)}, torchvision_resnet_rules("features.")))
        ['features.stages.1.0.shortcut.1.weight']
    """
    return [
        (r"^conv1\.", f"{prefix}stem.0."),
        (r"^bn1\.", f"{prefix}stem.1."),
        (r"^layer(\d)\.(\d+)\.conv(\d)\.", lambda m: f"{prefix}stages.{int(m[1]) - 1}.{m[2]}.conv{m[3]}.0."),
        (r"^layer(\d)\.(\d+)\.bn(\d)\.", lambda m: f"{prefix}stages.{int(m[1]) - 1}.{m[2]}.conv{m[3]}.1."),
        (r"^layer(\d)\.(\d+)\.downsample\.", lambda m: f"{prefix}stages.{int(m[1]) - 1}.{m[2]}.shortcut."),
    ]


def load_torchvision_encoder(encoder: ResNetEncoder, path: Union[str, os.PathLike]) -> None:
    """Load a torchvision ImageNet ResNet state-dict file (e.g. ``resnet34-b627a593.pth``) into ``encoder``.

    The classifier ``fc.*`` is dropped; every other key must match, with the usual ``WeightsError`` listing.

    Example:
        >>> import tempfile, torchvision
        >>> path = tempfile.mkdtemp() + "/resnet18.pth"
        >>> torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
        >>> load_torchvision_encoder(torchvision_resnet_encoder("resnet18"), path)
    """
    state = read_state_dict(path)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    state = remap_keys(state, torchvision_resnet_rules())
    load_state_dict(encoder, state, strict=True, source=str(path))

