"""The DeepLab decoders: DeepLabV3 (Chen et al. 2017), atrous spatial pyramid pooling on the coarsest map, and
DeepLabV3+ (Chen et al. 2018), which fuses it with one stride-4 map, as segmentation_models_pytorch builds them, so
that its checkpoints load (and torchvision's DeepLabV3 ones, whose head is the same ASPP)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct, SeparableConv2d

__all__ = ["ASPP", "ASPPPooling", "DeepLabV3Decoder", "DeepLabV3PlusDecoder"]


def _norm_act(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU())


class ASPPPooling(nn.Sequential):
    """Image-level features: global average pool, 1x1 conv, BatchNorm, ReLU, resized back (bilinear).

    Example:
        >>> ASPPPooling(8, 4).eval()(torch.zeros(1, 8, 5, 5)).shape
        torch.Size([1, 4, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(super().forward(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: a 1x1 branch, three dilated 3x3 branches, image pooling; concatenated and
    projected (1x1, BatchNorm, ReLU, dropout).

    Args:
        in_channels: Input channels.
        out_channels: Channels of each branch and of the output.
        rates: The three dilation rates.
        separable: Depthwise-separable dilated branches (DeepLabV3+) instead of plain convolutions.
        dropout: Dropout after the projection.

    Example:
        >>> ASPP(16, 8, (2, 4, 6)).eval()(torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, rates: Sequence[int], *, separable: bool = True,
                 dropout: float = 0.5) -> None:
        super().__init__()
        rates = tuple(rates)
        if len(rates) != 3:
            raise ValueError(f"ASPP needs three atrous rates, got {rates!r}")
        branches = [_norm_act(nn.Conv2d(in_channels, out_channels, 1, bias=False), out_channels)]
        for rate in rates:
            conv = (SeparableConv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False) if separable
                    else nn.Conv2d(in_channels, out_channels, 3, padding=rate, dilation=rate, bias=False))
            branches.append(_norm_act(conv, out_channels))
        branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(nn.Conv2d(5 * out_channels, out_channels, 1, bias=False),
                                     nn.BatchNorm2d(out_channels), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3Decoder(nn.Module):
    """ASPP on the coarsest map, then a 3x3 conv + BatchNorm + ReLU (``conv.0``, ``conv.1``): DeepLabV3's head
    before its classifier, smp's ``DeepLabV3Decoder`` and torchvision's ``DeepLabHead`` without its last 1x1 conv.

    Args:
        encoder_channels: The encoder's ``out_channels``; the last map is used.
        out_channels: Channels of ASPP and of the output.
        atrous_rates: ASPP's three dilation rates.
        aspp_separable: Depthwise-separable ASPP branches (smp's and torchvision's DeepLabV3 use plain ones).
        aspp_dropout: Dropout after ASPP's projection.

    Example:
        >>> dec = DeepLabV3Decoder([64, 128, 256], out_channels=32).eval()
        >>> dec([torch.zeros(1, 64, 16, 16), torch.zeros(1, 128, 8, 8), torch.zeros(1, 256, 8, 8)]).shape
        torch.Size([1, 32, 8, 8])
    """

    def __init__(self, encoder_channels: Sequence[int], *, out_channels: int = 256,
                 atrous_rates: Sequence[int] = (12, 24, 36), aspp_separable: bool = False,
                 aspp_dropout: float = 0.5) -> None:
        super().__init__()
        self.aspp = ASPP(encoder_channels[-1], out_channels, atrous_rates, separable=aspp_separable,
                         dropout=aspp_dropout)
        self.conv = ConvBNAct(out_channels, out_channels, 3, bias=False)
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return self.conv(self.aspp(features[-1]))


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP on the coarsest map, a separable 3x3, upsampled (bilinear, ``align_corners=True``) to the stride-4
    map, concatenated with that map reduced to 48 channels, and fused by a separable 3x3.

    Args:
        encoder_channels: The encoder's ``out_channels``.
        skip_index: Which map is the stride-4 skip connection.
        out_channels: Channels of ASPP and of the output.
        atrous_rates: ASPP's three dilation rates.
        aspp_separable: Depthwise-separable ASPP branches.
        aspp_dropout: Dropout after ASPP's projection.

    Example:
        >>> dec = DeepLabV3PlusDecoder([64, 64, 128, 256, 512], 1, out_channels=32).eval()
        >>> maps = [torch.zeros(1, c, s, s) for c, s in zip([64, 64, 128, 256, 512], [32, 16, 8, 4, 4])]
        >>> dec(maps).shape
        torch.Size([1, 32, 16, 16])
    """

    def __init__(self, encoder_channels: Sequence[int], skip_index: int, *, out_channels: int = 256,
                 atrous_rates: Sequence[int] = (12, 24, 36), aspp_separable: bool = True,
                 aspp_dropout: float = 0.5) -> None:
        super().__init__()
        self.skip_index = skip_index
        self.aspp = ASPP(encoder_channels[-1], out_channels, atrous_rates, separable=aspp_separable,
                         dropout=aspp_dropout)
        self.aspp_out = _norm_act(SeparableConv2d(out_channels, out_channels, 3, padding=1, bias=False),
                                  out_channels)
        skip_channels = 48  # the DeepLabV3+ paper's reduction of the stride-4 map
        self.skip = _norm_act(nn.Conv2d(encoder_channels[skip_index], skip_channels, 1, bias=False), skip_channels)
        self.fuse = _norm_act(SeparableConv2d(out_channels + skip_channels, out_channels, 3, padding=1, bias=False),
                              out_channels)
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        skip = features[self.skip_index]
        x = self.aspp_out(self.aspp(features[-1]))
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.fuse(torch.cat([x, self.skip(skip)], dim=1))
