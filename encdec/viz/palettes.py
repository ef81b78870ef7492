"""Palettes and label colouring: the VOC colour map, named palettes, and ``colorize`` as one lookup."""

from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..colors import BINARY_FOREGROUND, BOUNDARY_COLOR, TAB10, voc_palette

__all__ = ["BINARY_FOREGROUND", "BOUNDARY_COLOR", "PALETTES", "colorize", "get_palette", "voc_palette"]

ArrayLike = Union[np.ndarray, torch.Tensor]
PaletteLike = Union[str, np.ndarray, Sequence[Sequence[int]]]
Color = Tuple[int, int, int]
PathLike = Union[str, "os.PathLike[str]"]


def _build_palettes() -> Dict[str, np.ndarray]:
    voc = voc_palette(256)
    voc22 = voc.copy()
    voc22[21] = BOUNDARY_COLOR  # the VOC U-Net report's 22-class colour map: class 21 is the boundary
    binary = voc.copy()
    binary[0], binary[1] = (0, 0, 0), BINARY_FOREGROUND  # the Pet report's black background; a pet seen on white pages
    shapes = voc.copy()
    shapes[0] = (0, 0, 0)
    shapes[1 : 1 + len(TAB10)] = TAB10  # background black, then well-separated colours
    tab10 = voc.copy()
    tab10[: len(TAB10)] = TAB10
    out = {"voc": voc, "voc22": voc22, "binary": binary, "shapes": shapes, "tab10": tab10}
    for p in out.values():
        p.setflags(write=False)
    return out


#: Named palettes, each ``(256, 3)`` uint8: ``voc``, ``voc22`` (class 21 = boundary colour), ``binary``
#: (black background, amber foreground), ``shapes`` (black background, tab10 colours), ``tab10``.
PALETTES: Dict[str, np.ndarray] = _build_palettes()


def get_palette(palette: PaletteLike = "voc") -> np.ndarray:
    """A palette as a ``(K, 3)`` uint8 array, ``K >= 256`` (short palettes are completed with VOC colours).

    Args:
        palette: A name in ``PALETTES`` or a sequence of RGB triples.

    Returns:
        A uint8 array ``(K, 3)``.

    Raises:
        ValueError: For an unknown name or a malformed array.

    Example:
        >>> get_palette([(255, 0, 0)])[:2].tolist()
        [[255, 0, 0], [128, 0, 0]]
    """
    if isinstance(palette, str):
        if palette not in PALETTES:
            raise ValueError(f"unknown palette {palette!r}; known: {sorted(PALETTES)}")
        return PALETTES[palette]
    arr = np.asarray(palette)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"a palette must be a (K, 3) array of RGB colours, got shape {arr.shape}")
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if len(arr) < 256:
        arr = np.concatenate([arr, PALETTES["voc"][len(arr) :]])
    return arr


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A tensor (any device) or array as a NumPy array.

    Example:
        >>> to_numpy(torch.tensor([1, 2])).tolist()
        [1, 2]
    """
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def colorize(
    labels: ArrayLike,
    palette: PaletteLike = "voc",
    ignore_index: Optional[int] = None,
    ignore_color: Color = BOUNDARY_COLOR,
) -> ArrayLike:
    """Colour a label map with one palette lookup.

    Args:
        labels: Integer labels of any shape ``(..., H, W)``, NumPy or torch (any device).
        palette: Palette name or ``(K, 3)`` colours (see ``get_palette``).
        ignore_index: Label drawn in ``ignore_color`` (any integer, e.g. 255 or -1).
        ignore_color: RGB colour of ignored pixels.

    Returns:
        uint8 colours ``(..., H, W, 3)``: a NumPy array for NumPy input, a tensor on the same device for torch
        input.

    Raises:
        ValueError: For labels outside the palette (negative, or >= K) other than ``ignore_index``.

    Example:
        >>> import torch
        >>> colorize(torch.tensor([[0, 1]]), palette="binary").tolist()
        [[[0, 0, 0], [255, 176, 0]]]
    """
    lut = get_palette(palette)
    extra = False  # an ignore label outside the table (e.g. -1) gets one extra row, the last
    if ignore_index is not None:
        lut = lut.copy()
        if 0 <= ignore_index < len(lut):
            lut[ignore_index] = ignore_color
        else:
            lut = np.concatenate([lut, np.asarray([ignore_color], dtype=np.uint8)])
            extra = True
    k = len(lut)
    if isinstance(labels, torch.Tensor):
        if labels.is_floating_point():
            raise TypeError(f"labels must be integers, got {labels.dtype}")
        idx = labels.long()
        if extra:
            idx = torch.where(idx == ignore_index, torch.full_like(idx, k - 1), idx)
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= k):
            raise ValueError(_range_message(labels, k, ignore_index))
        return torch.tensor(lut, device=idx.device)[idx]
    arr = np.asarray(labels)
    if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
        raise TypeError(f"labels must be integers, got {arr.dtype}")
    idx = arr.astype(np.int64)
    if extra:
        idx = np.where(idx == ignore_index, k - 1, idx)
    if idx.size and (idx.min() < 0 or idx.max() >= k):
        raise ValueError(_range_message(labels, k, ignore_index))
    return lut[idx]


def _range_message(labels: ArrayLike, k: int, ignore_index: Optional[int]) -> str:
    arr = to_numpy(labels).astype(np.int64)
    bad = np.unique(arr[(arr < 0) | (arr >= k)])
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    return f"labels {bad[:10].tolist()} have no colour in a {k}-colour palette (pass ignore_index for them)"


