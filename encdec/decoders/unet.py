"""Decoders shared by several model families: they map an encoder's feature maps (high to low resolution) to
one feature map at the resolution of the first."""

from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

__all__ = ["UNetDecoder"]


class UNetDecoder(nn.Module):
    """Decoder blocks applied from the deepest feature map up, each taking the next skip connection.

    Blocks beyond the available skips get none (used when the encoder's first map is at stride 2).

    Args:
        blocks: The blocks, deepest first: ``DecoderBlock``s, or any module called as ``block(x, skip)``.
        dropout: Dropout probability after every block but the last (the Pet ResNet34-U-Net uses 0.5).

    Example:
        >>> from encdec.blocks import DecoderBlock
        >>> dec = UNetDecoder([DecoderBlock(16, 8, 8)])
        >>> dec([torch.zeros(1, 8, 8, 8), torch.zeros(1, 16, 4, 4)]).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, blocks: Sequence[nn.Module], *, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        skips = list(features[:-1])[::-1]
        x = features[-1]
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            x = block(x, skips[i] if i < len(skips) else None)
            if self.dropout is not None and i < last:
                x = self.dropout(x)
        return x
