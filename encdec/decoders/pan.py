"""The PAN decoder (Li et al. 2018, Pyramid Attention Network): a feature pyramid attention block on the coarsest
map and global attention upsampling blocks down to stride 4, as segmentation_models_pytorch builds it, so that its
checkpoints load."""

from __future__ import annotations

from typing import Sequence, Tuple

import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct

__all__ = ["FPABlock", "GAUBlock", "PANDecoder"]


def _resize(x: Tensor, size: Tuple[int, int], mode: str) -> Tensor:
    return F.interpolate(x, size=size, mode=mode, align_corners=True if mode == "bilinear" else None)


class FPABlock(nn.Module):
    """Feature pyramid attention: a U-shaped pyramid of 7x7, 5x5 and 3x3 convolutions to one channel (each after a
    2x max pooling, ``down1``-``down3``, merged back up through ``conv2`` and ``conv1``) gates a 1x1 projection
    of the map (``mid``), and its global average (``branch1``) is added. Every convolution is biased and followed
    by BatchNorm and ReLU, as in smp; resizing is bilinear with ``align_corners=True``. The map must be at least
    8 positions high and wide (three poolings).

    Args:
        in_channels: Channels of the map.
        out_channels: Output channels.

    Example:
        >>> FPABlock(16, 8).eval()(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNAct(in_channels, out_channels, 1))
        self.mid = nn.Sequential(ConvBNAct(in_channels, out_channels, 1))
        self.down1 = nn.Sequential(nn.MaxPool2d(2, 2), ConvBNAct(in_channels, 1, 7))
        self.down2 = nn.Sequential(nn.MaxPool2d(2, 2), ConvBNAct(1, 1, 5))
        self.down3 = nn.Sequential(nn.MaxPool2d(2, 2), ConvBNAct(1, 1, 3), ConvBNAct(1, 1, 3))
        self.conv2 = ConvBNAct(1, 1, 5)
        self.conv1 = ConvBNAct(1, 1, 7)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        pooled = _resize(self.branch1(x), (height, width), "bilinear")
        x1 = self.down1(x)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        y = self.conv2(x2) + _resize(x3, (height // 4, width // 4), "bilinear")
        y = self.conv1(x1) + _resize(y, (height // 2, width // 2), "bilinear")
        return _resize(y, (height, width), "bilinear") * self.mid(x) + pooled


class GAUBlock(nn.Module):
    """Global attention upsampling: the coarser decoder map, resized to the finer encoder map, plus the encoder map
    convolved (3x3 + BN + ReLU, ``conv2``) and gated channel by channel by the coarser map's global average
    (1x1 conv + BN, sigmoid, ``conv1``).

    Args:
        in_channels: Channels of the encoder map.
        out_channels: Channels of the decoder map (and of the output).
        upsample: ``"bilinear"`` (``align_corners=True``, smp's default) or ``"nearest"``.

    Example:
        >>> GAUBlock(16, 8).eval()(torch.zeros(1, 16, 8, 8), torch.zeros(1, 8, 4, 4)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, *, upsample: str = "bilinear") -> None:
        super().__init__()
        self.mode = upsample
        self.conv1 = nn.Sequential(nn.AdaptiveAvgPool2d(1), ConvBNAct(out_channels, out_channels, 1, act=False),
                                   nn.Sigmoid())
        self.conv2 = ConvBNAct(in_channels, out_channels, 3)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return _resize(y, tuple(x.shape[-2:]), self.mode) + self.conv2(x) * self.conv1(y)


class PANDecoder(nn.Module):
    """:class:`FPABlock` on the coarsest map, then one :class:`GAUBlock` per finer map down to stride 4, coarsest
    first (``gau3`` on the third map from stride 4, ``gau2``, ``gau1`` on the stride-4 map), as smp names them.

    Args:
        encoder_channels: The encoder's ``out_channels``.
        first: Index of the stride-4 map (the maps before it are not used).
        out_channels: Channels of every block.
        upsample: The GAU blocks' resizing: ``"bilinear"`` or ``"nearest"``.

    Example:
        >>> dec = PANDecoder([8, 16, 32, 64], 1, out_channels=8).eval()
        >>> dec([torch.zeros(1, c, 128 // 2**i, 128 // 2**i) for i, c in enumerate([8, 16, 32, 64], 1)]).shape
        torch.Size([1, 8, 32, 32])
    """

    def __init__(self, encoder_channels: Sequence[int], first: int, *, out_channels: int = 32,
                 upsample: str = "bilinear") -> None:
        super().__init__()
        if upsample not in ("bilinear", "nearest"):
            raise ValueError(f"decoder_interpolation must be 'bilinear' or 'nearest', got {upsample!r}")
        used = list(encoder_channels[first:])
        if not 2 <= len(used) <= 4:
            raise ValueError(f"PAN takes 2 to 4 maps from stride 4 on (smp's encoder_depth 3 to 5), got {len(used)}")
        self.first = first
        self.fpa = FPABlock(used[-1], out_channels)
        for level in range(len(used) - 1, 0, -1):
            self.add_module(f"gau{level}", GAUBlock(used[level - 1], out_channels, upsample=upsample))
        self.levels = len(used) - 1
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        maps = features[self.first:]
        x = self.fpa(maps[-1])
        for level in range(self.levels, 0, -1):
            x = getattr(self, f"gau{level}")(maps[level - 1], x)
        return x
