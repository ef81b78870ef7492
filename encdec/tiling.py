"""Sliding-window inference for images larger than memory: overlapping tiles, weighted blending, flip TTA.

:func:`sliding_window` cuts an image into tiles of a fixed size, runs them in batches, and blends the tiles' class
probabilities with weights that fall off towards each tile's border (a tile's centre sees its whole receptive
field; its border does not). Tiles start at multiples of the model's size multiple, so a model that pools or
strides sees each pixel at the same phase of its grid as it would in the whole image; the image is treated as
padded at the bottom and right up to that multiple (reflection, as untiled prediction pads it), so the last tile
of each row and column is whole too.

Rows of tiles are finished one after another: once no later tile covers a band of image rows, the band is turned
into labels and its accumulator is shifted up for the next row, so the memory held is a band of ``tile`` rows plus
one batch of tiles, whatever the image's height. The image itself may be read the same way: given a
:class:`RowSource` (an object with ``shape`` and ``rows(top, bottom)``) instead of a tensor, only the band of rows
the current row of tiles covers is asked for and held, so a large image is never converted to float whole
(``encdec.predict`` passes its images so).

Example:
    >>> import torch
    >>> from encdec.tiling import sliding_window
    >>> conv = torch.nn.Conv2d(3, 4, 1)
    >>> image = torch.randn(3, 100, 130)
    >>> labels = sliding_window(lambda x: conv(x), image, tile=48, overlap=0.25)
    >>> torch.equal(labels, conv(image[None]).argmax(1)[0])
    True
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, List, Optional, Protocol, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from .batches import class_labels

__all__ = ["RowSource", "blend_weights", "check_overlap", "sliding_window", "tile_starts"]

Forward = Callable[[Tensor], Tensor]


class RowSource(Protocol):
    """An image read band by band: ``shape`` is ``(C, H, W)``, ``device`` where its rows come, and
    ``rows(top, bottom)`` returns rows ``[top, bottom)`` as a prepared ``(C, bottom - top, W)`` tensor there.

    Example:
        >>> import torch
        >>> class Rows:
        ...     shape, device = (3, 40, 50), torch.device("cpu")
        ...     def rows(self, top, bottom):
        ...         return torch.ones(3, bottom - top, 50)
        >>> sliding_window(lambda x: torch.cat([x[:, :1], -x[:, :1]], 1), Rows(), tile=16).unique().tolist()
        [0]
    """

    shape: Tuple[int, ...]
    device: torch.device

    def rows(self, top: int, bottom: int) -> Tensor:
        """Rows ``[top, bottom)`` of the prepared image."""
        ...


def check_overlap(overlap: float) -> None:
    """Refuse an ``overlap`` that is not a number in ``[0, 1)``, naming the option and its valid values.

    Raises:
        TypeError: ``overlap`` is not a real number (a string such as ``"0.5"``, a bool, ``None``).
        ValueError: ``overlap`` is outside ``[0, 1)`` or not finite.

    Example:
        >>> check_overlap(0.25)
        >>> try:
        ...     check_overlap("0.5")
        ... except TypeError as error:
        ...     print(error)
        overlap must be a fraction in [0, 1), got '0.5' (a str): the share of a tile its neighbours overlap
    """
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real):
        raise TypeError(f"overlap must be a fraction in [0, 1), got {overlap!r} (a {type(overlap).__name__}): the "
                        "share of a tile its neighbours overlap")
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be a fraction in [0, 1), got {overlap!r}: the share of a tile its "
                         "neighbours overlap")


def tile_starts(length: int, tile: int, stride: int) -> List[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` pixels, ``stride`` apart, the last one aligned to
    the end (so it is whole). With ``length``, ``tile`` and ``stride`` multiples of a model's size multiple, every
    start is one too.

    Example:
        >>> tile_starts(1000, 512, 384)
        [0, 384, 488]
        >>> tile_starts(1024, 512, 384)
        [0, 384, 512]
        >>> tile_starts(300, 512, 384)
        [0]
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def blend_weights(height: int, width: int, floor: float = 0.05) -> Tensor:
    """Per-pixel blending weights of one tile: the product of two tents, 1 at the centre, ``floor`` at the middle of
    each border and ``floor ** 2`` in the corners (never 0, so every pixel of a tile counts).

    Example:
        >>> w = blend_weights(5, 7)
        >>> tuple(w.shape), float(w[2, 3]), round(float(w[0, 3]), 2), round(float(w.min()), 4)
        ((5, 7), 1.0, 0.05, 0.0025)
    """

    def ramp(n: int) -> Tensor:
        centre = (n - 1) / 2
        distance = (torch.arange(n, dtype=torch.float32) - centre).abs() / max(centre, 1.0)
        return (1.0 - distance).clamp_min(floor)

    return ramp(height)[:, None] * ramp(width)[None, :]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _round_down(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def _window(image: Tensor, y: int, x: int, height: int, width: int) -> Tensor:
    """The tile ``[y, y + height) x [x, x + width)`` of ``image``; the part past the bottom or right edge is
    reflected as untiled prediction pads it (replicated where the image is too thin to reflect)."""
    window = image[:, y : y + height, x : x + width]
    pad_h, pad_w = height - window.shape[-2], width - window.shape[-1]
    if not pad_h and not pad_w:
        return window
    mode = "reflect" if pad_h < window.shape[-2] and pad_w < window.shape[-1] else "replicate"
    return F.pad(window[None], (0, pad_w, 0, pad_h), mode=mode)[0]


def _flips(tta: bool) -> Sequence[Sequence[int]]:
    return ((), (-1,), (-2,)) if tta else ((),)


def _probabilities(forward: Forward, tiles: Tensor, tta: bool) -> Tensor:
    """Softmax probabilities of a batch of tiles, averaged over the flips when ``tta``."""
    total: Optional[Tensor] = None
    flips = _flips(tta)
    for dims in flips:
        x = tiles.flip(dims) if dims else tiles
        probs = forward(x).float().softmax(dim=1)
        probs = probs.flip(dims) if dims else probs
        total = probs if total is None else total + probs
    return total / len(flips)  # type: ignore[operator]


def sliding_window(
    forward: Forward,
    image: Union[Tensor, RowSource],
    *,
    tile: Optional[int],
    overlap: float = 0.25,
    batch_size: int = 4,
    tta: bool = False,
    probabilities: bool = False,
    multiple: int = 1,
) -> Tensor:
    """Labels (or probabilities) of one image ``(C, H, W)`` from overlapping tiles.

    Args:
        forward: ``forward(batch)`` -> logits ``(N, K, h, w)`` for a batch of tiles ``(N, C, h, w)`` (of the same
            height and width: ``forward`` pads them to what the model accepts, if needed, and crops back).
        image: The prepared image (normalised float ``(C, H, W)``), on the device ``forward`` expects; or a
            :class:`RowSource` giving its rows one band of tiles at a time (the whole image is then never held).
        tile: Tile side in pixels (an image side shorter than that is one tile); ``None``: the whole image is
            one tile (for flip TTA alone).
        overlap: Fraction of a tile shared with its neighbour, in ``[0, 1)``.
        batch_size: Tiles per forward pass.
        tta: Also predict each tile flipped left-right and upside-down, and average the three.
        probabilities: Return probabilities ``(K, H, W)`` (float32, on the CPU; this holds the whole image) instead
            of labels ``(H, W)`` (int64).
        multiple: The model's size multiple (16 for a U-Net that pools four times): ``tile`` is rounded up to a
            multiple of it, tiles start at multiples of it, and the image is treated as reflection-padded at the
            bottom and right to a multiple of it, as untiled prediction pads it.

    Returns:
        Labels ``(H, W)`` or probabilities ``(K, H, W)``.

    Raises:
        ValueError: ``tile``, ``overlap``, ``batch_size`` or ``multiple`` out of range, or an image that is not
            ``(C, H, W)``.

    Example:
        >>> import torch
        >>> conv = torch.nn.Conv2d(3, 2, 1)
        >>> sliding_window(lambda x: conv(x), torch.randn(3, 64, 64), tile=32, tta=True).shape
        torch.Size([64, 64])
    """
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile!r}")
    check_overlap(overlap)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise ValueError(f"multiple must be a positive integer, got {multiple!r}")
    if len(image.shape) != 3:
        raise ValueError(f"sliding_window takes one image (C, H, W), got shape {tuple(image.shape)}")
    height, width = int(image.shape[-2]), int(image.shape[-1])
    full_height, full_width = _round_up(height, multiple), _round_up(width, multiple)  # the padded extent
    if tile is not None:
        tile = _round_up(tile, multiple)
    th, tw = (full_height, full_width) if tile is None else (min(tile, full_height), min(tile, full_width))
    stride_h = _round_down(max(1, int(math.floor(th * (1.0 - overlap)))), multiple)
    stride_w = _round_down(max(1, int(math.floor(tw * (1.0 - overlap)))), multiple)
    rows = tile_starts(full_height, th, stride_h)
    cols = tile_starts(full_width, tw, stride_w)
    weights = blend_weights(th, tw).to(image.device)

    # Each row of tiles covers the band [y, y + th); the rows above the next row's start are then final. The band's
    # accumulators are allocated once and shifted up, so the memory held is one band, whatever the image's height.
    result: Optional[Tensor] = None  # labels (H, W) or probabilities (K, H, W), filled band by band
    acc: Optional[Tensor] = None  # probabilities x weights of the band's rows, and their weight sums
    norm = torch.zeros((th, full_width), device=image.device)
    for index, y in enumerate(rows):
        # the image rows this row of tiles covers (y < height always: the padding is less than one multiple)
        band = image[:, y : y + th] if isinstance(image, Tensor) else image.rows(y, min(y + th, height))
        for start in range(0, len(cols), batch_size):
            xs = cols[start : start + batch_size]
            batch = torch.stack([_window(band, 0, x, th, tw) for x in xs])
            probs = _probabilities(forward, batch, tta)
            if acc is None:  # the class count is known from the first output
                acc = probs.new_zeros((probs.shape[1], th, full_width))
            for position, x in enumerate(xs):
                acc[:, :, x : x + tw] += probs[position] * weights
                norm[:, x : x + tw] += weights
        done = rows[index + 1] - y if index + 1 < len(rows) else th  # rows of the band that are final
        if result is None:
            classes = acc.shape[0]  # type: ignore[union-attr]
            shape = (classes, full_height, full_width) if probabilities else (full_height, full_width)
            result = torch.empty(shape, dtype=torch.float32 if probabilities else torch.int64)
        if probabilities:
            result[:, y : y + done] = (acc[:, :done] / norm[:done]).cpu()
        else:  # every weight sum is positive, so the largest weighted sum is the largest probability
            result[y : y + done] = class_labels(acc[None, :, :done])[0].cpu()
        if index + 1 < len(rows):  # shift the rows the next row of tiles shares up, and clear the rest
            keep = th - done
            acc[:, :keep] = acc[:, done:].clone()
            norm[:keep] = norm[done:].clone()
            acc[:, keep:] = 0
            norm[keep:] = 0
    return result[..., :height, :width]  # type: ignore[index]
