"""The UNet++ decoder (Zhou et al. 2018): nested, densely connected skip pathways between the encoder and the
decoder, as segmentation_models_pytorch builds it, so that its checkpoints load."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ..blocks import DecoderBlock

__all__ = ["UNetPlusPlusDecoder"]


class UNetPlusPlusDecoder(nn.Module):
    """Nested U-Net decoding: node ``x_{d}_{l}`` upsamples the node before it on its row and concatenates every
    node above it in its column with the encoder map of that resolution.

    The maps are taken deepest first: column ``l`` holds the nodes at the resolution of map ``l + 1``; the node of
    row ``d`` (``d <= l``) takes ``x_{d}_{l-1}`` (map ``l`` itself on the diagonal, ``d == l``), upsamples it and
    concatenates ``x_{d+1}_{l}``, ..., ``x_{l}_{l}`` and map ``l + 1``. Row 0 carries ``decoder_channels``, the
    other rows the channels of their column's encoder map; a last block ``x_0_{n-1}`` upsamples row 0 to the
    input's resolution. Each node is a :class:`~encdec.blocks.DecoderBlock` (upsampling by 2, two 3x3 conv + BN +
    ReLU), named as in smp (``blocks.x_0_0`` ...).

    Args:
        encoder_channels: The encoder's ``out_channels`` (high to low resolution, one map per halving from 2).
        decoder_channels: Row 0's channels, one per map.
        upsample: ``"nearest"`` or ``"bilinear"`` (pixel centres, as smp).
        norm: ``False``: no BatchNorm (biased convolutions), smp's ``decoder_use_norm=False``.
        attention: ``"scse"``: squeeze-and-excitation in every node, as smp's ``decoder_attention_type``.

    Example:
        >>> dec = UNetPlusPlusDecoder([8, 16, 32], [32, 16, 8])
        >>> dec([torch.zeros(1, c, 32 // 2**i, 32 // 2**i) for i, c in enumerate([8, 16, 32])]).shape
        torch.Size([1, 8, 64, 64])
    """

    def __init__(self, encoder_channels: Sequence[int], decoder_channels: Sequence[int], *,
                 upsample: str = "nearest", norm: bool = True, attention: Optional[str] = None) -> None:
        super().__init__()
        maps = list(encoder_channels)[::-1]
        n = len(decoder_channels)
        if len(maps) != n:
            raise ValueError(f"decoder_channels needs one entry per encoder map ({len(maps)}), got {n}")
        skips = maps[1:] + [0]
        rows = [maps[0], *decoder_channels[:-1]]  # what comes into each column on row 0

        def node(in_channels: int, skip_channels: int, out_channels: int) -> DecoderBlock:
            return DecoderBlock(in_channels, skip_channels, out_channels, upsample=upsample, align_corners=False,
                                bias=False, norm=norm, attention=attention)

        blocks: Dict[str, nn.Module] = {}
        for col in range(n - 1):
            for row in range(col + 1):
                skip = skips[col] * (col + 1 - row)
                if row == 0:
                    blocks[f"x_0_{col}"] = node(rows[col], skip, decoder_channels[col])
                else:
                    blocks[f"x_{row}_{col}"] = node(skips[col - 1], skip, skips[col])
        blocks[f"x_0_{n - 1}"] = node(rows[-1], 0, decoder_channels[-1])
        self.blocks = nn.ModuleDict(blocks)
        self.depth = n
        self.out_channels = decoder_channels[-1]

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        maps: List[Tensor] = list(features)[::-1]
        nodes: Dict[Tuple[int, int], Tensor] = {}
        for col in range(self.depth - 1):
            for row in range(col, -1, -1):  # the nodes below come first: each concatenates them
                x = maps[col] if row == col else nodes[row, col - 1]
                skip = torch.cat([nodes[i, col] for i in range(row + 1, col + 1)] + [maps[col + 1]], dim=1)
                nodes[row, col] = self.blocks[f"x_{row}_{col}"](x, skip)
        last = nodes[0, self.depth - 2] if self.depth > 1 else maps[0]
        return self.blocks[f"x_0_{self.depth - 1}"](last)
