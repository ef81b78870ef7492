"""SegFormer's all-MLP decoder (Xie et al. 2021): each encoder map projected by one linear layer per position,
all brought to stride 4 and fused by a 1x1 convolution, as segmentation_models_pytorch builds it, so that its
checkpoints load."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..blocks import ConvBNAct

__all__ = ["PositionwiseLinear", "SegformerDecoder"]


class PositionwiseLinear(nn.Module):
    """One linear layer applied to the channels at every position of an ``(N, C, H, W)`` map (a 1x1 convolution
    stored as ``nn.Linear``, under the name ``linear``).

    Example:
        >>> PositionwiseLinear(8, 4)(torch.zeros(2, 8, 3, 5)).shape
        torch.Size([2, 4, 3, 5])
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class SegformerDecoder(nn.Module):
    """Every encoder map through its :class:`PositionwiseLinear` to ``out_channels``, resized to stride 4
    (bilinear, ``align_corners=False``), concatenated from the coarsest to the finest, then a 1x1 conv + BatchNorm
    + ReLU.

    Args:
        encoder_channels: The encoder's ``out_channels``.
        strides: The encoder's ``strides``; the output is at stride 4.
        out_channels: Channels of each projection and of the output.

    Example:
        >>> dec = SegformerDecoder([32, 64, 160, 256], [4, 8, 16, 32], out_channels=16).eval()
        >>> maps = [torch.zeros(1, c, 16 // 2**i, 16 // 2**i) for i, c in enumerate([32, 64, 160, 256])]
        >>> dec(maps).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(self, encoder_channels: Sequence[int], strides: Sequence[int], *, out_channels: int = 256) -> None:
        super().__init__()
        self.first_stride = int(strides[0])
        self.mlp_stage = nn.ModuleList(PositionwiseLinear(c, out_channels) for c in list(encoder_channels)[::-1])
        self.fuse_stage = ConvBNAct(len(encoder_channels) * out_channels, out_channels, 1, bias=False)
        self.out_channels = out_channels

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        finest = features[0].shape[-2:]
        size = [side * self.first_stride // 4 for side in finest]
        projected = [F.interpolate(mlp(x), size=size, mode="bilinear", align_corners=False)
                     for mlp, x in zip(self.mlp_stage, features[::-1])]
        return self.fuse_stage(torch.cat(projected, dim=1))
