"""Images of segmentations: displayable RGB, overlays, prediction grids and palette PNG masks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from ..batches import class_labels
from .palettes import ArrayLike, PaletteLike, PathLike, colorize, get_palette, to_numpy

__all__ = ["overlay", "prediction_grid", "save_mask", "save_prediction_grid", "to_rgb"]


def to_rgb(
    image: ArrayLike, mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None
) -> np.ndarray:
    """Images as displayable uint8 RGB ``(..., H, W, 3)``, undoing normalisation when given ``mean``/``std``.

    Args:
        image: ``(3, H, W)`` or ``(N, 3, H, W)`` tensors/arrays (channels first), or ``(H, W, 3)`` uint8 arrays.
            Floats are taken to be in ``[0, 1]`` after undoing the normalisation; uint8 is used as is.
        mean: Per-channel mean of the normalisation, if any.
        std: Per-channel std of the normalisation, if any.

    Returns:
        A uint8 array ``(H, W, 3)`` or ``(N, H, W, 3)``.

    Example:
        >>> import torch
        >>> to_rgb(torch.zeros(3, 2, 2), mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))[0, 0].tolist()
        [128, 128, 128]
    """
    arr = to_numpy(image)
    channels_last = arr.ndim == 3 and arr.shape[-1] in (1, 3) and arr.shape[0] not in (1, 3)
    if not channels_last:
        if arr.ndim not in (3, 4) or arr.shape[-3] not in (1, 3):
            raise ValueError(f"expected images (3, H, W) or (N, 3, H, W), got shape {arr.shape}")
        arr = np.moveaxis(arr, -3, -1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    arr = arr.astype(np.float32)
    if mean is not None and std is not None:
        arr = arr * np.asarray(std, np.float32) + np.asarray(mean, np.float32)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def overlay(
    image: ArrayLike,
    labels: ArrayLike,
    alpha: float = 0.5,
    palette: PaletteLike = "voc",
    ignore_index: Optional[int] = None,
    background: Optional[int] = 0,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
) -> np.ndarray:
    """Blend coloured labels over an image; the ``background`` label stays see-through.

    Args:
        image: Image(s) accepted by ``to_rgb``.
        labels: Labels ``(H, W)`` or ``(N, H, W)`` matching the image(s).
        alpha: Opacity of the label colours.
        palette: Palette name or colours.
        ignore_index: Label drawn in the boundary colour.
        background: Label left uncoloured (``None`` colours every pixel).
        mean: Normalisation mean of the image, if any.
        std: Normalisation std of the image, if any.

    Returns:
        uint8 RGB ``(..., H, W, 3)``.

    Example:
        >>> import numpy as np
        >>> out = overlay(np.zeros((2, 2, 3), np.uint8), np.array([[0, 1], [1, 0]]), alpha=1.0)
        >>> out[0, 1].tolist(), out[0, 0].tolist()
        ([128, 0, 0], [0, 0, 0])
    """
    rgb = to_rgb(image, mean, std).astype(np.float32)
    lab = to_numpy(labels)
    colours = np.asarray(colorize(lab, palette, ignore_index)).astype(np.float32)
    if rgb.shape[:-1] != colours.shape[:-1]:
        raise ValueError(f"image {rgb.shape[:-1]} and labels {lab.shape} differ in size")
    weight = np.full(lab.shape + (1,), alpha, dtype=np.float32)
    if background is not None:
        weight[lab == background] = 0.0
    return (rgb * (1.0 - weight) + colours * weight + 0.5).astype(np.uint8)


def _labels(x: ArrayLike) -> np.ndarray:
    """Labels from labels ``(N, H, W)`` or from scores ``(N, C, H, W)`` (argmax; one channel = binary logits)."""
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() == 4:
        x = (x[:, 0] > 0).long() if x.shape[1] == 1 else class_labels(x)
    arr = to_numpy(x)
    if np.issubdtype(arr.dtype, np.floating) and arr.ndim == 4:
        arr = (arr[:, 0] > 0).astype(np.int64) if arr.shape[1] == 1 else arr.argmax(axis=1)
    return arr


def prediction_grid(
    images: ArrayLike,
    targets: ArrayLike,
    preds: ArrayLike,
    palette: PaletteLike = "voc",
    ignore_index: Optional[int] = None,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    max_items: int = 8,
    pad: int = 2,
    pad_value: int = 255,
) -> np.ndarray:
    """One picture with a row per sample: image | ground truth | prediction.

    Built from whole-batch arrays: the images, ``colorize`` of the targets and of the predictions are
    stacked, padded and reshaped into one uint8 array.

    Args:
        images: ``(N, 3, H, W)`` batch (normalised floats with ``mean``/``std``, floats in ``[0, 1]``, or uint8).
        targets: ``(N, H, W)`` labels.
        preds: ``(N, H, W)`` labels or ``(N, C, H, W)`` scores (argmax over classes).
        palette: Palette name or colours.
        ignore_index: Target label drawn in the boundary colour.
        mean: Normalisation mean of the images, if any.
        std: Normalisation std of the images, if any.
        max_items: Most rows (the first samples of the batch).
        pad: Pixels of separation between tiles.
        pad_value: Grey level of the separation.

    Returns:
        A uint8 array ``(rows * (H + pad) + pad, 3 * (W + pad) + pad, 3)``.

    Example:
        >>> import torch
        >>> grid = prediction_grid(torch.rand(2, 3, 8, 8), torch.zeros(2, 8, 8, dtype=torch.long),
        ...                        torch.randn(2, 3, 8, 8), pad=1)
        >>> grid.shape
        (19, 28, 3)
    """
    img = to_rgb(to_numpy(images)[:max_items], mean, std)
    if img.ndim != 4:
        raise ValueError(f"images must be a batch (N, 3, H, W), got {tuple(img.shape)} after conversion")
    tgt = _labels(targets)[:max_items]
    prd = _labels(preds)[:max_items]
    tiles = np.stack([img, colorize(tgt, palette, ignore_index), colorize(prd, palette, ignore_index)], axis=1)
    n, cols, h, w, _ = tiles.shape
    if tgt.shape != (n, h, w) or prd.shape != (n, h, w):
        raise ValueError(f"images {img.shape[:3]}, targets {tgt.shape} and predictions {prd.shape} differ")
    tiles = np.pad(tiles, ((0, 0), (0, 0), (pad, 0), (pad, 0), (0, 0)), constant_values=pad_value)
    grid = tiles.transpose(0, 2, 1, 3, 4).reshape(n * (h + pad), cols * (w + pad), 3)
    return np.pad(grid, ((0, pad), (0, pad), (0, 0)), constant_values=pad_value)


def save_prediction_grid(
    path: PathLike, images: ArrayLike, targets: ArrayLike, preds: ArrayLike, *,
    class_names: Optional[Sequence[str]] = None, annotate: bool = True, **kwargs: Any
) -> Path:
    """Write ``prediction_grid`` as a PNG (parent folders are created), with column titles and a legend.

    With ``annotate`` (the default) small tiles are enlarged (nearest neighbour) to at least 96 pixels wide, the
    columns get the titles *image*, *target* and *prediction*, and a legend below names the colour of every class
    present in the targets or the predictions.

    Args:
        path: Output file.
        images: See ``prediction_grid``.
        targets: See ``prediction_grid``.
        preds: See ``prediction_grid``.
        class_names: Names for the legend (default: the class numbers).
        annotate: Titles and legend; ``False`` writes the bare grid.
        **kwargs: Passed to ``prediction_grid``.

    Returns:
        The path written.

    Example:
        >>> import torch, tempfile, os
        >>> p = save_prediction_grid(os.path.join(tempfile.mkdtemp(), "val.png"), torch.rand(1, 3, 4, 4),
        ...                          torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4, dtype=torch.long))
        >>> p.suffix
        '.png'
    """
    from PIL import Image

    grid = prediction_grid(images, targets, preds, **kwargs)
    picture = Image.fromarray(grid)
    if annotate:
        present = set(np.unique(_labels(targets)[: kwargs.get("max_items", 8)]).tolist())
        present |= set(np.unique(_labels(preds)[: kwargs.get("max_items", 8)]).tolist())
        present.discard(kwargs.get("ignore_index"))
        legend = [(int(k), class_names[k] if class_names is not None and 0 <= k < len(class_names) else str(k))
                  for k in sorted(present) if k >= 0]
        palette = get_palette(kwargs.get("palette", "voc"))
        picture = _annotated(picture, int(to_numpy(images).shape[-1]), kwargs.get("pad", 2), legend, palette)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    return out


_TITLES = ("image", "target", "prediction")
_TEXT = (0, 0, 0)


def _annotated(picture: Any, tile: int, pad: int, legend: Sequence[Any], palette: np.ndarray) -> Any:
    """The grid enlarged to readable tiles, with a title band above and a wrapped legend below."""
    from PIL import Image, ImageDraw, ImageFont

    scale = max(1, -(-96 // max(tile, 1)))
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    font = ImageFont.load_default()
    line = 16
    column = (tile + pad) * scale
    swatch, gap = 11, 14
    entries, width, rows, x = [], picture.width, 1, 4
    for label, name in legend:
        size = swatch + 4 + int(ImageDraw.Draw(picture).textlength(name, font=font)) + gap
        if x + size > width and x > 4:
            rows, x = rows + 1, 4
        entries.append((label, name, x, rows - 1))
        x += size
    footer = rows * line + 4 if legend else 0
    canvas = Image.new("RGB", (width, picture.height + line + footer), (255, 255, 255))
    canvas.paste(picture, (0, line))
    draw = ImageDraw.Draw(canvas)
    for index, title in enumerate(_TITLES):
        left = pad * scale + index * column
        text_width = draw.textlength(title, font=font)
        draw.text((left + max(0, (tile * scale - text_width) / 2), 2), title, fill=_TEXT, font=font)
    top = line + picture.height + 4
    for label, name, x, row in entries:
        y = top + row * line
        colour = tuple(int(v) for v in palette[label % len(palette)])
        draw.rectangle((x, y + 1, x + swatch, y + 1 + swatch), fill=colour, outline=(96, 96, 96))
        draw.text((x + swatch + 4, y), name, fill=_TEXT, font=font)
    return canvas


def save_mask(path: PathLike, labels: ArrayLike, palette: PaletteLike = "voc", bits: int = 8) -> Path:
    """Write labels as a PNG whose pixel values are the labels: a palette PNG (VOC's mask format, colours from
    ``palette``) with ``bits=8``, a 16-bit greyscale PNG (PIL mode ``"I;16"``; PNG palettes hold 256 colours)
    with ``bits=16`` for more than 256 classes.

    Args:
        path: Output file.
        labels: ``(H, W)`` labels in ``[0, 255]`` (``bits=8``) or ``[0, 65535]`` (``bits=16``).
        palette: Palette stored in the file (``bits=8``).
        bits: 8 or 16.

    Returns:
        The path written.

    Raises:
        ValueError: A label outside the range ``bits`` holds, or ``bits`` other than 8 or 16.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> p = save_mask(os.path.join(tempfile.mkdtemp(), "m.png"), np.array([[0, 15], [255, 1]]))
        >>> Image.open(p).mode, np.array(Image.open(p)).tolist()
        ('P', [[0, 15], [255, 1]])
        >>> p = save_mask(os.path.join(tempfile.mkdtemp(), "m.png"), np.array([[0, 299]]), bits=16)
        >>> Image.open(p).mode, np.array(Image.open(p)).tolist()
        ('I;16', [[0, 299]])
    """
    from PIL import Image

    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 (a palette PNG) or 16 (a 16-bit greyscale PNG), got {bits!r}")
    arr = to_numpy(labels)
    if arr.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {arr.shape}")
    top = (1 << bits) - 1
    if arr.size and (arr.min() < 0 or arr.max() > top):
        raise ValueError(f"{'palette' if bits == 8 else '16-bit'} PNGs hold labels 0-{top}, got range "
                         f"[{arr.min()}, {arr.max()}]" + ("; pass bits=16" if bits == 8 and arr.max() <= 65535 else ""))
    if bits == 8:
        im = Image.fromarray(arr.astype(np.uint8), mode="P")
        im.putpalette(get_palette(palette)[:256].reshape(-1).tolist())
    else:
        im = Image.fromarray(arr.astype(np.uint16))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out)
    return out


