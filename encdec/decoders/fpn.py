"""The Feature Pyramid Network decoder (Kirillov et al.'s panoptic FPN head), as segmentation_models_pytorch
builds it, so that its checkpoints load."""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FPNDecoder", "UpsamplingConv"]


class UpsamplingConv(nn.Sequential):
    """3x3 convolution (no bias), GroupNorm of 32 groups, ReLU, then optionally a bilinear x2 upsampling
    (``align_corners=True``); indexed ``0``-``2``.

    Example:
        >>> UpsamplingConv(32, 32, upsample=True)(torch.zeros(1, 32, 4, 4)).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, *, upsample: bool) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.GroupNorm(32, out_channels), nn.ReLU(inplace=True))
        self.upsample = upsample

    def forward(self, x: Tensor) -> Tensor:
        x = super().forward(x)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True) if self.upsample else x


class FPNDecoder(nn.Module):
    """Top-down pyramid over the last four maps (strides 4-32), each level brought to stride 4 and merged.

    ``top`` (1x1) starts the pyramid from the coarsest map; each finer level adds a 1x1 ``lateral`` of its map to
    the level above upsampled x2 (``interpolation``). Each of the four levels then goes through its ``branch`` of
    3x3 conv + GroupNorm + ReLU units, each upsampling x2, until it reaches the finest level's size; the
    branches are summed (``merge="add"``) or concatenated (``"cat"``), and spatial dropout follows.

    Args:
        encoder_channels: The encoder's ``out_channels``; the last four maps are used.
        pyramid_channels: Channels of the pyramid.
        segmentation_channels: Channels of each branch.
        merge: ``"add"`` or ``"cat"`` (4x ``segmentation_channels`` out).
        dropout: ``Dropout2d`` probability after the merge.
        interpolation: Upsampling mode of the top-down path.

    Example:
        >>> dec = FPNDecoder([64, 128, 256, 512], pyramid_channels=32, segmentation_channels=32)
        >>> maps = [torch.zeros(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([64, 128, 256, 512])]
        >>> dec(maps).shape
        torch.Size([1, 32, 32, 32])
    """

    merges = ("add", "cat")

    def __init__(self, encoder_channels: Sequence[int], *, pyramid_channels: int = 256,
                 segmentation_channels: int = 128, merge: str = "add", dropout: float = 0.2,
                 interpolation: str = "nearest") -> None:
        super().__init__()
        if merge not in self.merges:
            raise ValueError(f"merge must be one of {self.merges}, got {merge!r}")
        if len(encoder_channels) < 4:
            raise ValueError(f"FPNDecoder needs 4 feature maps, got channels for {len(encoder_channels)}")
        c2, c3, c4, c5 = list(encoder_channels)[-4:]
        self.top = nn.Conv2d(c5, pyramid_channels, 1)
        self.laterals = nn.ModuleList(nn.Conv2d(c, pyramid_channels, 1) for c in (c4, c3, c2))
        self.branches = nn.ModuleList(
            nn.Sequential(*(UpsamplingConv(pyramid_channels if i == 0 else segmentation_channels,
                                           segmentation_channels, upsample=ups > 0) for i in range(max(ups, 1))))
            for ups in (3, 2, 1, 0)
        )
        self.merge = merge
        self.interpolation = interpolation
        self.dropout = nn.Dropout2d(dropout)
        self.out_channels = segmentation_channels * (4 if merge == "cat" else 1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        c2, c3, c4, c5 = list(features)[-4:]
        levels: List[Tensor] = [self.top(c5)]
        for lateral, skip in zip(self.laterals, (c4, c3, c2)):
            levels.append(F.interpolate(levels[-1], scale_factor=2.0, mode=self.interpolation) + lateral(skip))
        outputs = [branch(level) for branch, level in zip(self.branches, levels)]
        merged = torch.cat(outputs, dim=1) if self.merge == "cat" else torch.stack(outputs).sum(dim=0)
        return self.dropout(merged)
