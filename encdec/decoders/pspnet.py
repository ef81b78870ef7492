"""The PSPNet decoder (Zhao et al. 2017): the coarsest map average-pooled to several grids, each reduced and
upsampled back, concatenated with the map and fused, as segmentation_models_pytorch builds it, so that its
checkpoints load."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct

__all__ = ["PSPDecoder", "PyramidPooling"]


class _PoolBranch(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, grid: int, norm: bool = True) -> None:
        super().__init__()
        # a 1x1 grid holds one value per channel and image, too few for BatchNorm statistics
        norm = norm and grid > 1
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(grid),
                                  ConvBNAct(in_channels, out_channels, 1, bias=not norm, norm=norm))

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=True)


class PyramidPooling(nn.Module):
    """The pyramid pooling module: for each grid size, adaptive average pooling, a 1x1 conv to
    ``in_channels / len(grids)`` (+ BatchNorm, except on the 1x1 grid, + ReLU) and bilinear upsampling back
    (``align_corners=True``); the branches are concatenated, followed by the input itself.

    Args:
        in_channels: Channels of the map pooled.
        grids: Side of each pooling grid.

    Example:
        >>> PyramidPooling(16).eval()(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, in_channels: int, grids: Sequence[int] = (1, 2, 3, 6), *, norm: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_PoolBranch(in_channels, in_channels // len(grids), g, norm) for g in grids)
        self.out_channels = in_channels + len(grids) * (in_channels // len(grids))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([block(x) for block in self.blocks] + [x], dim=1)


class PSPDecoder(nn.Module):
    """Pyramid pooling on the coarsest map, a 1x1 conv + BatchNorm + ReLU to ``out_channels``, spatial dropout.

    Args:
        encoder_channels: The encoder's ``out_channels``; the last map is used.
        out_channels: Channels of the output.
        dropout: ``Dropout2d`` probability.
        norm: ``False``: no BatchNorm (biased convolutions), smp's ``decoder_use_norm=False``.

    Example:
        >>> dec = PSPDecoder([64, 64, 128], out_channels=32).eval()
        >>> dec([torch.zeros(1, 64, 32, 32), torch.zeros(1, 64, 16, 16), torch.zeros(1, 128, 8, 8)]).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, encoder_channels: Sequence[int], *, out_channels: int = 512, dropout: float = 0.2,
                 norm: bool = True) -> None:
        super().__init__()
        self.psp = PyramidPooling(encoder_channels[-1], norm=norm)
        self.conv = ConvBNAct(self.psp.out_channels, out_channels, 1, bias=not norm, norm=norm)
        self.dropout = nn.Dropout2d(dropout)
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.dropout(self.conv(self.psp(features[-1])))
