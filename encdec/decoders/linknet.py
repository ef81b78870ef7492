"""The LinkNet decoder (Chaurasia and Culurciello 2017): each level shrinks its channels by four, upsamples by a
learned transposed convolution and adds the encoder's map of that resolution, as segmentation_models_pytorch
builds it, so that its checkpoints load."""

from __future__ import annotations

from typing import List, Optional, Sequence

from torch import Tensor, nn

from ..blocks import ConvBNAct
from .unet import UNetDecoder

__all__ = ["LinknetBlock", "LinknetDecoder"]


class LinknetBlock(nn.Module):
    """1x1 conv to a quarter of the channels, a x2 transposed conv (kernel 4), 1x1 conv to ``out_channels``, each
    with BatchNorm and ReLU (``block.0``-``block.2``); then the skip connection is added.

    Args:
        in_channels: Channels coming up the decoder.
        out_channels: Output channels (those of the skip connection it adds, when it has one).
        norm: ``False``: no BatchNorm (biased 1x1 convolutions), smp's ``decoder_use_norm=False``.

    Example:
        >>> block = LinknetBlock(64, 32)
        >>> block(torch.zeros(1, 64, 8, 8), torch.zeros(1, 32, 16, 16)).shape
        torch.Size([1, 32, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, *, norm: bool = True) -> None:
        super().__init__()
        mid = in_channels // 4
        up = nn.Sequential(nn.ConvTranspose2d(mid, mid, 4, stride=2, padding=1),
                           nn.BatchNorm2d(mid) if norm else nn.Identity(), nn.ReLU(inplace=True))
        self.block = nn.Sequential(ConvBNAct(in_channels, mid, 1, bias=not norm, norm=norm), up,
                                   ConvBNAct(mid, out_channels, 1, bias=not norm, norm=norm))

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        x = self.block(x)
        return x if skip is None else x + skip


class LinknetDecoder(UNetDecoder):
    """One ``LinknetBlock`` per halving of the coarsest stride, deepest first, each adding the next finer
    map; blocks past the finest map add nothing and end at ``prefinal_channels``. It climbs the maps as
    ``UNetDecoder`` does.

    Args:
        encoder_channels: The encoder's ``out_channels`` (high to low resolution).
        levels: Number of blocks (``log2`` of the coarsest stride: 5 for stride 32).
        prefinal_channels: Channels of the last block's output.
        norm: ``False``: blocks without BatchNorm.

    Example:
        >>> dec = LinknetDecoder([64, 64, 128, 256, 512], levels=5)
        >>> maps = [torch.zeros(1, c, 64 // 2**i, 64 // 2**i) for i, c in enumerate([64, 64, 128, 256, 512], 1)]
        >>> dec(maps).shape
        torch.Size([1, 32, 64, 64])
    """

    def __init__(self, encoder_channels: Sequence[int], *, levels: int, prefinal_channels: int = 32,
                 norm: bool = True) -> None:
        skips = list(encoder_channels[:-1])[::-1][: levels - 1]
        ins: List[int] = [encoder_channels[-1]]
        for skip in skips + [0] * (levels - 1 - len(skips)):
            ins.append(skip or ins[-1])  # a block without a skip keeps the channels coming in
        outs = ins[1:] + [prefinal_channels]
        super().__init__([LinknetBlock(i, o, norm=norm) for i, o in zip(ins, outs)])
        self.out_channels = prefinal_channels
