"""The DPT decoder (Ranftl et al. 2021): transformer blocks' outputs reassembled into a pyramid of maps (strides
4 to 32) and fused from the coarsest up, as segmentation_models_pytorch builds it, so that its checkpoints load."""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DPTDecoder", "DPTFusionBlock", "DPTReadout", "DPTReassemble", "READOUTS"]

#: How the class token joins the patch tokens: concatenated and projected, added, or left out.
READOUTS = ("cat", "add", "ignore")


class DPTReadout(nn.Module):
    """DPT's readout of the prefix (class) tokens into a map: ``"cat"`` appends the first prefix token to every
    position and projects back (Linear + GELU, under ``project``); ``"add"`` adds the mean prefix token;
    ``"ignore"`` returns the map as it is. Without prefix tokens each returns the map (``"cat"`` still projects).

    Example:
        >>> DPTReadout(8, "cat", has_prefix_tokens=True)(torch.zeros(1, 8, 2, 3), torch.zeros(1, 1, 8)).shape
        torch.Size([1, 8, 2, 3])
    """

    def __init__(self, channels: int, mode: str, *, has_prefix_tokens: bool) -> None:
        super().__init__()
        if mode not in READOUTS:
            raise ValueError(f"decoder_readout must be one of {', '.join(READOUTS)}, got {mode!r}")
        self.mode = mode
        if mode == "cat":
            self.project = nn.Sequential(nn.Linear(channels * (2 if has_prefix_tokens else 1), channels), nn.GELU())

    def forward(self, x: Tensor, prefix: Optional[Tensor] = None) -> Tensor:
        if self.mode == "ignore" or (self.mode == "add" and prefix is None):
            return x
        batch, channels, height, width = x.shape
        if self.mode == "add":
            return x + prefix.mean(dim=1).reshape(batch, channels, 1, 1)
        tokens = x.flatten(2).transpose(1, 2)
        if prefix is not None:
            tokens = torch.cat([tokens, prefix[:, :1].expand_as(tokens)], dim=2)
        return self.project(tokens).transpose(1, 2).reshape(batch, channels, height, width)


class DPTReassemble(nn.Module):
    """A 1x1 conv to ``mid_channels``, a resampling by ``scale`` (a transposed conv up, a strided 3x3 conv down,
    or nothing) and a 3x3 conv (no bias) to ``out_channels``.

    Example:
        >>> DPTReassemble(8, 16, 4, 2.0)(torch.zeros(1, 8, 3, 3)).shape
        torch.Size([1, 4, 6, 6])
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, scale: float) -> None:
        super().__init__()
        self.project_to_out_channel = nn.Conv2d(in_channels, mid_channels, 1)
        if scale > 1:
            self.upsample: nn.Module = nn.ConvTranspose2d(mid_channels, mid_channels, int(scale), int(scale))
        elif scale == 1:
            self.upsample = nn.Identity()
        else:
            self.upsample = nn.Conv2d(mid_channels, mid_channels, 3, int(1 / scale), 1)
        self.project_to_feature_dim = nn.Conv2d(mid_channels, out_channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.project_to_feature_dim(self.upsample(self.project_to_out_channel(x)))


class _ResidualConvUnit(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.batch_norm_1 = nn.BatchNorm2d(channels)
        self.conv_2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.batch_norm_2 = nn.BatchNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        y = self.batch_norm_1(self.conv_1(F.relu(x)))
        return x + self.batch_norm_2(self.conv_2(F.relu(y)))


class DPTFusionBlock(nn.Module):
    """A residual conv unit on the map, the level below added, a second unit, bilinear x2 upsampling
    (``align_corners=True``) and a 1x1 conv.

    Example:
        >>> DPTFusionBlock(4).eval()(torch.zeros(1, 4, 3, 3)).shape
        torch.Size([1, 4, 6, 6])
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.residual_conv_block1 = _ResidualConvUnit(channels)
        self.residual_conv_block2 = _ResidualConvUnit(channels)
        self.project = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, below: Optional[Tensor] = None) -> Tensor:
        x = self.residual_conv_block1(x)
        if below is not None:
            x = x + below
        x = F.interpolate(self.residual_conv_block2(x), scale_factor=2, mode="bilinear", align_corners=True)
        return self.project(x)


class DPTDecoder(nn.Module):
    """The maps of ``len(encoder_channels)`` transformer blocks, each read out with its prefix tokens
    (:class:`DPTReadout`), reassembled to strides 4, 8, 16, 32, ... (:class:`DPTReassemble`) and fused from the
    coarsest up (:class:`DPTFusionBlock`, each upsampling x2): the output is at half the finest stride (2).

    Args:
        encoder_channels: Channels of each block's map.
        strides: Stride of each block's map (16 for a ViT with 16-pixel patches).
        has_prefix_tokens: Whether the encoder gives prefix (class) tokens.
        readout: One of :data:`READOUTS`.
        intermediate_channels: Channels of each reassembled map before its last convolution.
        fusion_channels: Channels of the fused maps and of the output.

    Example:
        >>> dec = DPTDecoder([8] * 4, [16] * 4, has_prefix_tokens=False, readout="ignore",
        ...                  intermediate_channels=(4, 4, 8, 8), fusion_channels=4).eval()
        >>> dec([torch.zeros(1, 8, 4, 4)] * 4, [None] * 4).shape
        torch.Size([1, 4, 32, 32])
    """

    def __init__(self, encoder_channels: Sequence[int], strides: Sequence[int], *, has_prefix_tokens: bool,
                 readout: str = "cat", intermediate_channels: Sequence[int] = (256, 512, 1024, 1024),
                 fusion_channels: int = 256) -> None:
        super().__init__()
        if not len(encoder_channels) == len(strides) == len(intermediate_channels):
            raise ValueError(f"decoder_intermediate_channels needs one entry per encoder block ({len(strides)}), "
                             f"got {len(intermediate_channels)}")
        self.projection_blocks = nn.ModuleList(DPTReadout(c, readout, has_prefix_tokens=has_prefix_tokens)
                                               for c in encoder_channels)
        self.reassemble_blocks = nn.ModuleList(
            DPTReassemble(c, mid, fusion_channels, stride / 2 ** (i + 2))
            for i, (c, mid, stride) in enumerate(zip(encoder_channels, intermediate_channels, strides)))
        self.fusion_blocks = nn.ModuleList(DPTFusionBlock(fusion_channels) for _ in encoder_channels)
        self.out_channels = fusion_channels

    def forward(self, features: Sequence[Tensor], prefix_tokens: Sequence[Optional[Tensor]]) -> Tensor:
        levels: List[Tensor] = [reassemble(readout(x, tokens)) for readout, reassemble, x, tokens in
                                zip(self.projection_blocks, self.reassemble_blocks, features, prefix_tokens)]
        fused: Optional[Tensor] = None
        for block, level in zip(self.fusion_blocks, levels[::-1]):
            fused = block(level, fused)
        return fused
