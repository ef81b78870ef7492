"""The UPerNet decoder (Xiao et al. 2018): pyramid pooling on the coarsest map, a top-down feature pyramid over the
finer ones, every level brought to stride 4 and fused, as segmentation_models_pytorch builds it, so that its
checkpoints load."""

from __future__ import annotations

from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct

__all__ = ["ChannelLayerNorm", "UPerNetDecoder", "UPerNetPooling"]


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an ``(N, C, H, W)`` map, at every position.

    Example:
        >>> norm = ChannelLayerNorm(4)
        >>> x = torch.randn(1, 4, 3, 3)
        >>> torch.allclose(norm(x).mean(1), torch.zeros(1, 3, 3), atol=1e-5)
        True
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _PoolBranch(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, grid: int, norm: bool) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(grid), ConvBNAct(in_channels, out_channels, 1, bias=not norm, norm=norm))


class UPerNetPooling(nn.Module):
    """UPerNet's pyramid pooling: the map average-pooled to each grid, each through a 1x1 conv (+ BatchNorm) + ReLU
    to ``out_channels`` and resized back (bilinear, ``align_corners=False``), concatenated after the map itself
    and fused by a 3x3 conv + BatchNorm + ReLU.

    Unlike PSPNet's module, every branch keeps its BatchNorm (the 1x1 grid's too, so training needs batches of
    two images or more) and the fusing convolution always has one.

    Args:
        in_channels: Channels of the map pooled.
        out_channels: Channels of each branch and of the output.
        grids: Side of each pooling grid.
        norm: ``False``: no BatchNorm in the branches (biased convolutions).

    Example:
        >>> UPerNetPooling(16, 8).eval()(torch.zeros(1, 16, 6, 6)).shape
        torch.Size([1, 8, 6, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, grids: Sequence[int] = (1, 2, 3, 6), *,
                 norm: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(_PoolBranch(in_channels, out_channels, grid, norm) for grid in grids)
        self.out_conv = ConvBNAct(in_channels + len(grids) * out_channels, out_channels, 3, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        return self.out_conv(torch.cat([x] + [_resize(block(x), size) for block in self.blocks], dim=1))


class _Lateral(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, norm: bool) -> None:
        super().__init__()
        self.conv_norm_relu = ConvBNAct(in_channels, out_channels, 1, bias=not norm, norm=norm)

    def forward(self, above: Tensor, skip: Tensor) -> Tensor:
        skip = self.conv_norm_relu(skip)
        return _resize(above, skip.shape[-2:]) + skip


class UPerNetDecoder(nn.Module):
    """UPerNet over the encoder's maps from stride 4 on: each map layer-normalised over its channels,
    :class:`UPerNetPooling` on the coarsest, then a top-down pyramid (each finer map through a 1x1 conv + BN + ReLU,
    plus the level above resized to it, then a 3x3 conv + BN + ReLU); all levels resized to the stride-4 one,
    concatenated from fine to coarse, and fused by a 3x3 conv + BN + ReLU.

    Args:
        encoder_channels: The encoder's ``out_channels``.
        first: Index of the stride-4 map in the encoder's maps; the maps before it are not used.
        out_channels: Channels of every level and of the output.
        norm: ``False``: no BatchNorm (biased convolutions) except in the pooling's fusing convolution, smp's
            ``decoder_use_norm=False``.

    Example:
        >>> dec = UPerNetDecoder([64, 64, 128, 256, 512], first=1, out_channels=32).eval()
        >>> maps = [torch.zeros(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate([64, 64, 128, 256, 512])]
        >>> dec(maps).shape
        torch.Size([1, 32, 32, 32])
    """

    def __init__(self, encoder_channels: Sequence[int], *, first: int, out_channels: int = 256,
                 norm: bool = True) -> None:
        super().__init__()
        channels = list(encoder_channels)[first:]
        if len(channels) < 2:
            raise ValueError(f"UPerNet needs at least two maps from stride 4 on, got channels {channels}")
        self.first = first
        self.feature_norms = nn.ModuleList(ChannelLayerNorm(c, eps=1e-6) for c in channels)
        self.psp = UPerNetPooling(channels[-1], out_channels, norm=norm)
        finer = channels[:-1][::-1]
        self.fpn_lateral_blocks = nn.ModuleList(_Lateral(c, out_channels, norm) for c in finer)
        self.fpn_conv_blocks = nn.ModuleList(
            ConvBNAct(out_channels, out_channels, 3, bias=not norm, norm=norm) for _ in finer)
        self.fusion_block = ConvBNAct(len(channels) * out_channels, out_channels, 3, bias=not norm, norm=norm)
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        maps = [norm(x) for norm, x in zip(self.feature_norms, features[self.first:])]
        levels: List[Tensor] = [self.psp(maps[-1])]
        for lateral, skip in zip(self.fpn_lateral_blocks, maps[:-1][::-1]):
            levels.append(lateral(levels[-1], skip))
        levels = levels[:1] + [conv(x) for conv, x in zip(self.fpn_conv_blocks, levels[1:])]
        size = levels[-1].shape[-2:]
        return self.fusion_block(torch.cat([_resize(x, size) for x in levels[::-1]], dim=1))
