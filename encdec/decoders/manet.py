"""The MA-Net decoder (Fan et al. 2020): a position-wise attention block on the coarsest map and multi-scale fusion
attention blocks on the way up, as segmentation_models_pytorch builds it, so that its checkpoints load."""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct, DecoderBlock, DoubleConv, channel_gate
from .unet import UNetDecoder

__all__ = ["MAnetDecoder", "MFABlock", "PABlock"]


def _upsample(x: Tensor, mode: str) -> Tensor:
    return F.interpolate(x, scale_factor=2.0, mode=mode, align_corners=False if mode == "bilinear" else None)


class PABlock(nn.Module):
    """Position-wise attention: every position of the map attends to every other one.

    Queries (``center_conv``) and keys (``top_conv``) are 1x1 convolutions to ``pab_channels``, values
    (``bottom_conv``) a 3x3 convolution; the result is added to the input and convolved (``out_conv``, 3x3). As in
    smp, whose weights this must reproduce, the softmax runs over all query-key pairs of an image at once (not per
    query), and the ``(positions, channels)`` result is reshaped to ``(channels, height, width)`` without a
    transpose.

    Args:
        channels: Channels of the map.
        pab_channels: Channels of the queries and keys.

    Example:
        >>> PABlock(16, 8)(torch.zeros(1, 16, 4, 4)).shape
        torch.Size([1, 16, 4, 4])
    """

    def __init__(self, channels: int, pab_channels: int = 64) -> None:
        super().__init__()
        self.top_conv = nn.Conv2d(channels, pab_channels, 1)
        self.center_conv = nn.Conv2d(channels, pab_channels, 1)
        self.bottom_conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.out_conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        queries = self.center_conv(x).flatten(2).transpose(1, 2)
        keys = self.top_conv(x).flatten(2)
        values = self.bottom_conv(x).flatten(2).transpose(1, 2)
        weights = torch.softmax(torch.matmul(queries, keys).flatten(1), dim=1)
        context = torch.matmul(weights.view(batch, height * width, height * width), values)
        return self.out_conv(x + context.reshape(batch, channels, height, width))


class MFABlock(nn.Module):
    """Multi-scale fusion attention: the coming map is convolved (3x3, then 1x1 to the skip's channels,
    ``hl_conv``), upsampled by 2 and scaled by the sum of two channel gates (``SE_hl`` on it, ``SE_ll`` on the
    skip); then concatenated with the skip and convolved twice (3x3 conv + BN + ReLU each, ``conv``).

    Args:
        in_channels: Channels coming up the decoder.
        skip_channels: Channels of the skip connection.
        out_channels: Output channels.
        upsample: ``"nearest"`` or ``"bilinear"`` (pixel centres).
        norm: ``False``: no BatchNorm (biased convolutions).
        reduction: Channel squeeze factor of the gates.

    Example:
        >>> MFABlock(32, 16, 8)(torch.zeros(1, 32, 4, 4), torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, *, upsample: str = "nearest",
                 norm: bool = True, reduction: int = 16) -> None:
        super().__init__()
        self.mode = upsample
        self.hl_conv = nn.Sequential(ConvBNAct(in_channels, in_channels, 3, bias=not norm, norm=norm),
                                     ConvBNAct(in_channels, skip_channels, 1, bias=not norm, norm=norm))
        squeezed = max(1, skip_channels // reduction)
        self.SE_ll = channel_gate(skip_channels, squeezed)
        self.SE_hl = channel_gate(skip_channels, squeezed)
        self.conv = DoubleConv(2 * skip_channels, out_channels, bias=not norm, norm=norm)

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        x = _upsample(self.hl_conv(x), self.mode)
        if skip is None:
            raise ValueError("MFABlock fuses a skip connection; got none")
        x = x * (self.SE_hl(x) + self.SE_ll(skip))
        return self.conv(torch.cat([x, skip], dim=1))


class MAnetDecoder(UNetDecoder):
    """:class:`PABlock` on the coarsest map (``center``), then one block per halving of its stride, deepest first:
    an :class:`MFABlock` where a skip connection comes, a plain :class:`~encdec.blocks.DecoderBlock` where none
    does. It climbs the maps as :class:`~encdec.decoders.unet.UNetDecoder` does.

    Args:
        encoder_channels: The encoder's ``out_channels`` (high to low resolution).
        decoder_channels: Output channels of each block (one per halving of the coarsest stride).
        pab_channels: Channels of the position attention's queries and keys.
        upsample: ``"nearest"`` or ``"bilinear"`` (pixel centres).
        norm: ``False``: no BatchNorm (biased convolutions), smp's ``decoder_use_norm=False``.

    Example:
        >>> dec = MAnetDecoder([8, 16, 32], [16, 8, 8], pab_channels=4)
        >>> dec([torch.zeros(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([8, 16, 32])]).shape
        torch.Size([1, 8, 64, 64])
    """

    def __init__(self, encoder_channels: Sequence[int], decoder_channels: Sequence[int], *, pab_channels: int = 64,
                 upsample: str = "nearest", norm: bool = True) -> None:
        channels = list(encoder_channels)
        skips = (channels[:-1][::-1] + [0] * len(decoder_channels))[: len(decoder_channels)]
        ins = [channels[-1], *decoder_channels[:-1]]
        blocks: List[nn.Module] = [
            MFABlock(i, s, o, upsample=upsample, norm=norm) if s else
            DecoderBlock(i, 0, o, upsample=upsample, align_corners=False, bias=False, norm=norm)
            for i, s, o in zip(ins, skips, decoder_channels)
        ]
        super().__init__(blocks)
        self.center = PABlock(channels[-1], pab_channels)
        self.out_channels = decoder_channels[-1]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        return super().forward([*features[:-1], self.center(features[-1])])
