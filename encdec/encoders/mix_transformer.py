"""The Mix Transformer encoders of SegFormer (Xie et al. 2021), ``mit_b0`` to ``mit_b5``: four stages, each an
overlapping patch embedding (a strided convolution) and transformer blocks whose attention reads a spatially
reduced copy of the map and whose feed-forward layer holds a 3x3 depthwise convolution instead of position
embeddings. Maps at strides 4, 8, 16 and 32; any input whose sides are divisible by 32.

Module names are segmentation_models_pytorch's (``patch_embed1``, ``block1.0.attn.q``, ``norm1``, ...), so its
checkpoints (and its ImageNet encoder files) load unconverted.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple, Union

from torch import Tensor, nn

from ..weights import load_state_dict, read_state_dict
from .contract import EncoderError, adapt_input_channels, maps_within_depth

__all__ = ["MIT_VARIANTS", "DropPath", "MixTransformerEncoder", "is_mix_transformer"]

PathLike = Union[str, os.PathLike]

#: Width and number of blocks of each stage, per variant (the paper's Table 6).
MIT_VARIANTS: Dict[str, Tuple[Tuple[int, ...], Tuple[int, ...]]] = {
    "mit_b0": ((32, 64, 160, 256), (2, 2, 2, 2)),
    "mit_b1": ((64, 128, 320, 512), (2, 2, 2, 2)),
    "mit_b2": ((64, 128, 320, 512), (3, 4, 6, 3)),
    "mit_b3": ((64, 128, 320, 512), (3, 4, 18, 3)),
    "mit_b4": ((64, 128, 320, 512), (3, 8, 27, 3)),
    "mit_b5": ((64, 128, 320, 512), (3, 6, 40, 3)),
}
_HEADS = (1, 2, 5, 8)
_REDUCTIONS = (8, 4, 2, 1)  # attention's spatial reduction per stage
_MLP_RATIO = 4
_DROP_PATH = 0.1  # stochastic depth of the last block; earlier blocks get proportionally less
_STRIDES = (4, 8, 16, 32)


class DropPath(nn.Module):
    """Stochastic depth: in training, each sample's residual branch is zeroed with probability ``p`` and the
    kept ones scaled by ``1 / (1 - p)``; the identity in evaluation.

    Example:
        >>> DropPath(0.5).eval()(torch.ones(2, 3)).sum().item()
        6.0
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep


class _ChannelNorm(nn.LayerNorm):
    """LayerNorm over channels, for ``(N, C, H, W)`` maps and ``(N, L, C)`` token sequences alike."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return super().forward(x)


class _PatchEmbedding(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2)
        self.norm = _ChannelNorm(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.proj(x))


class _ReducedAttention(nn.Module):
    """Multi-head self-attention whose keys and values come from the map shrunk by ``reduction`` (a strided
    convolution and LayerNorm), so the cost grows with the number of positions over ``reduction ** 2``."""

    def __init__(self, dim: int, heads: int, reduction: int) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.reduction = reduction
        self.sr: nn.Module = nn.Conv2d(dim, dim, reduction, reduction) if reduction > 1 else nn.Identity()
        self.norm: nn.Module = _ChannelNorm(dim) if reduction > 1 else nn.Identity()

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        batch, length, dim = tokens.shape
        q = self.q(tokens).reshape(batch, length, self.heads, -1).transpose(1, 2)
        source = tokens
        if self.reduction > 1:
            grid = tokens.transpose(1, 2).reshape(batch, dim, height, width)
            source = self.norm(self.sr(grid).flatten(2).transpose(1, 2))
        k, v = self.kv(source).reshape(batch, -1, 2, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        # written out rather than fused (scaled_dot_product_attention): the same operations in the same order as
        # the reference implementation, so that its checkpoints give its outputs to the last digits
        weights = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(batch, length, dim))


class _DepthwiseConv(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        batch, _, dim = tokens.shape
        grid = tokens.transpose(1, 2).reshape(batch, dim, height, width)
        return self.dwconv(grid).flatten(2).transpose(1, 2)


class _MixFeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = _DepthwiseConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, tokens: Tensor, height: int, width: int) -> Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(tokens), height, width)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, reduction: int, drop_path: float) -> None:
        super().__init__()
        self.norm1 = _ChannelNorm(dim, eps=1e-6)
        self.attn = _ReducedAttention(dim, heads, reduction)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = _ChannelNorm(dim, eps=1e-6)
        self.mlp = _MixFeedForward(dim, dim * _MLP_RATIO)

    def forward(self, x: Tensor) -> Tensor:
        batch, dim, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        tokens = tokens + self.drop_path(self.attn(self.norm1(tokens), height, width))
        tokens = tokens + self.drop_path(self.mlp(self.norm2(tokens), height, width))
        return tokens.transpose(1, 2).reshape(batch, dim, height, width)


class MixTransformerEncoder(nn.Module):
    """A Mix Transformer (``mit_b0`` ... ``mit_b5``) on the encoder contract: maps at strides 4, 8, 16 and 32.

    Args:
        name: One of :data:`MIT_VARIANTS`.
        in_channels: Image channels (the first patch embedding is adapted as for every encoder).
        weights: A local state-dict file of the encoder (segmentation_models_pytorch's ``mit_bN`` ImageNet file,
            without the ``encoder.`` prefix), checked strictly; its classifier (``head.*``) is left out.
        depth: Keep only the maps within this many halvings (3: strides 4 and 8) and the stages they need.

    Raises:
        EncoderError: An unknown variant, or a depth that keeps no map.

    Example:
        >>> enc = MixTransformerEncoder("mit_b0")
        >>> enc.out_channels, enc.strides
        ([32, 64, 160, 256], [4, 8, 16, 32])
        >>> [f.shape[-1] for f in enc.eval()(torch.zeros(1, 3, 64, 64))]
        [16, 8, 4, 2]
    """

    def __init__(self, name: str, *, in_channels: int = 3, weights: Optional[PathLike] = None,
                 depth: Optional[int] = None) -> None:
        super().__init__()
        if name not in MIT_VARIANTS:
            raise EncoderError(f"unknown Mix Transformer {name!r}; choose one of {', '.join(MIT_VARIANTS)}")
        widths, blocks = MIT_VARIANTS[name]
        self.name = name
        stages = len(_STRIDES) if depth is None else maps_within_depth(_STRIDES, depth, name=name)
        total = sum(blocks)
        rates = [_DROP_PATH * i / (total - 1) for i in range(total)]
        start, previous = 0, 3
        for index in range(stages):
            kernel, stride = (7, 4) if index == 0 else (3, 2)
            self.add_module(f"patch_embed{index + 1}", _PatchEmbedding(previous, widths[index], kernel, stride))
            self.add_module(f"block{index + 1}", nn.Sequential(*(
                _Block(widths[index], _HEADS[index], _REDUCTIONS[index], rates[start + i])
                for i in range(blocks[index]))))
            self.add_module(f"norm{index + 1}", _ChannelNorm(widths[index], eps=1e-6))
            start, previous = start + blocks[index], widths[index]
        self.out_channels: List[int] = list(widths[:stages])
        self.strides: List[int] = list(_STRIDES[:stages])
        self.left_out: List[str] = [f"{part}{i + 1}" for i in range(stages, len(_STRIDES))
                                    for part in ("patch_embed", "block", "norm")]
        self.size_multiple, self.fixed_size = 32, None
        self._stages = stages
        if weights is not None:
            state = read_state_dict(weights)
            dropped = ("head.", *(f"{step}." for step in self.left_out))  # the ImageNet classifier too
            load_state_dict(self, {k: v for k, v in state.items() if not k.startswith(dropped)}, strict=True,
                            source=str(weights))
        adapt_input_channels(self, in_channels, pretrained=weights is not None)

    def forward(self, x: Tensor) -> List[Tensor]:
        maps = []
        for index in range(1, self._stages + 1):
            x = getattr(self, f"patch_embed{index}")(x)
            x = getattr(self, f"norm{index}")(getattr(self, f"block{index}")(x)).contiguous()
            maps.append(x)
        return maps


def is_mix_transformer(name: str) -> bool:
    """Whether ``name`` is a Mix Transformer variant.

    Example:
        >>> is_mix_transformer("mit_b2"), is_mix_transformer("resnet34")
        (True, False)
    """
    return name in MIT_VARIANTS

