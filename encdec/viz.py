"""Pictures of segmentations: palettes, label colouring, overlays, prediction grids and training curves.

Everything here is a whole-array operation: :func:`colorize` is one palette lookup (``palette[labels]``), a
prediction grid is a few stacks and one reshape, with no Python loop over pixels or images. PNGs are written
with Pillow; only :func:`plot_history` needs matplotlib (``pip install "encdec[plot]"``), imported when called.

Example:
    >>> import numpy as np
    >>> from encdec import viz
    >>> viz.colorize(np.array([[0, 1], [15, 255]]))[1, 0].tolist()  # person, VOC colours
    [192, 128, 128]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

__all__ = [
    "PALETTES",
    "colorize",
    "get_palette",
    "overlay",
    "plot_history",
    "prediction_grid",
    "save_mask",
    "save_prediction_grid",
    "to_rgb",
    "voc_palette",
]

ArrayLike = Union[np.ndarray, torch.Tensor]
PaletteLike = Union[str, np.ndarray, Sequence[Sequence[int]]]
Color = Tuple[int, int, int]
PathLike = Union[str, "os.PathLike[str]"]

#: Colour of the VOC object boundary (label 255, or class 21 in the 22-class reference models).
BOUNDARY_COLOR: Color = (224, 224, 192)


def voc_palette(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``n`` RGB colours from the bits of the label (``255 -> (224, 224, 192)``).

    Args:
        n: Number of colours (at most 256).

    Returns:
        A uint8 array ``(n, 3)``.

    Example:
        >>> voc_palette()[[0, 1, 15, 255]].tolist()
        [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    ids = np.arange(n, dtype=np.int64)
    rgb = np.zeros((n, 3), dtype=np.int64)
    c = ids.copy()
    for j in range(8):  # 8 bit planes, each vectorised over all labels
        for ch in range(3):
            rgb[:, ch] |= ((c >> ch) & 1) << (7 - j)
        c >>= 3
    return rgb.astype(np.uint8)


# matplotlib's tab10 colours, then VOC colours for the rest
_TAB10 = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


def _build_palettes() -> Dict[str, np.ndarray]:
    voc = voc_palette(256)
    voc22 = voc.copy()
    voc22[21] = BOUNDARY_COLOR  # seed 000's 22-class colour map: class 21 is the boundary
    binary = voc.copy()
    binary[0], binary[1] = (0, 0, 0), (255, 255, 255)  # seed 003's black background / white pet
    shapes = voc.copy()
    shapes[0] = (0, 0, 0)
    shapes[1 : 1 + len(_TAB10)] = _TAB10  # background black, then well-separated colours
    tab10 = voc.copy()
    tab10[: len(_TAB10)] = _TAB10
    out = {"voc": voc, "voc22": voc22, "binary": binary, "shapes": shapes, "tab10": tab10}
    for p in out.values():
        p.setflags(write=False)
    return out


#: Named palettes, each ``(256, 3)`` uint8: ``voc``, ``voc22`` (class 21 = boundary colour), ``binary``
#: (black / white), ``shapes`` (black background, tab10 colours), ``tab10``.
PALETTES: Dict[str, np.ndarray] = _build_palettes()


def get_palette(palette: PaletteLike = "voc") -> np.ndarray:
    """A palette as a ``(K, 3)`` uint8 array, ``K >= 256`` (short palettes are completed with VOC colours).

    Args:
        palette: A name in :data:`PALETTES` or a sequence of RGB triples.

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


def _numpy(x: ArrayLike) -> np.ndarray:
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
        palette: Palette name or ``(K, 3)`` colours (see :func:`get_palette`).
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
        [[[0, 0, 0], [255, 255, 255]]]
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
    arr = _numpy(labels).astype(np.int64)
    bad = np.unique(arr[(arr < 0) | (arr >= k)])
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    return f"labels {bad[:10].tolist()} have no colour in a {k}-colour palette (pass ignore_index for them)"


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
    arr = _numpy(image)
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
        image: Image(s) accepted by :func:`to_rgb`.
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
    lab = _numpy(labels)
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
        x = (x[:, 0] > 0).long() if x.shape[1] == 1 else x.argmax(dim=1)
    arr = _numpy(x)
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

    Built from whole-batch arrays: the images, :func:`colorize` of the targets and of the predictions are
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
    img = to_rgb(_numpy(images)[:max_items], mean, std)
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
    path: PathLike, images: ArrayLike, targets: ArrayLike, preds: ArrayLike, **kwargs: Any
) -> Path:
    """Write :func:`prediction_grid` as a PNG (parent folders are created).

    Args:
        path: Output file.
        images: See :func:`prediction_grid`.
        targets: See :func:`prediction_grid`.
        preds: See :func:`prediction_grid`.
        **kwargs: Passed to :func:`prediction_grid`.

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

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(prediction_grid(images, targets, preds, **kwargs)).save(out)
    return out


def save_mask(path: PathLike, labels: ArrayLike, palette: PaletteLike = "voc") -> Path:
    """Write labels as a palette PNG (VOC's mask format): pixel values are the labels, colours the palette.

    Args:
        path: Output file.
        labels: ``(H, W)`` labels in ``[0, 255]``.
        palette: Palette stored in the file.

    Returns:
        The path written.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from PIL import Image
        >>> p = save_mask(os.path.join(tempfile.mkdtemp(), "m.png"), np.array([[0, 15], [255, 1]]))
        >>> Image.open(p).mode, np.array(Image.open(p)).tolist()
        ('P', [[0, 15], [255, 1]])
    """
    from PIL import Image

    arr = _numpy(labels)
    if arr.ndim != 2:
        raise ValueError(f"a mask must be (H, W), got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"palette PNGs hold labels 0-255, got range [{arr.min()}, {arr.max()}]")
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette(get_palette(palette)[:256].reshape(-1).tolist())
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out)
    return out


def _series(history: Any) -> Dict[str, List[float]]:
    """Name -> values from a mapping of lists, a list of per-epoch dicts, or an object with ``to_dict()``."""
    for attr in ("to_dict", "as_dict"):
        if hasattr(history, attr):
            history = getattr(history, attr)()
            break
    else:
        if hasattr(history, "history") and not isinstance(history, Mapping):
            history = history.history
    if isinstance(history, Mapping):
        out = {}
        for k, v in history.items():
            if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) for x in v):
                out[str(k)] = [float(x) for x in v]
        return out
    if isinstance(history, (list, tuple)) and all(isinstance(r, Mapping) for r in history):
        keys = [k for r in history for k, v in r.items() if isinstance(v, (int, float))]
        return {str(k): [float(r.get(k, float("nan"))) for r in history] for k in dict.fromkeys(keys)}
    raise TypeError(
        "history must be a mapping of name -> list of numbers, a list of per-epoch dicts, or have to_dict(); "
        f"got {type(history).__name__}"
    )


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'encdec[plot]' (or matplotlib)"
        ) from e
    return Figure


def plot_history(history: Any, path: Optional[PathLike] = None, keys: Optional[Sequence[str]] = None) -> Any:
    """Plot training curves: one panel per metric, train and validation lines together.

    Keys named ``train_x`` / ``val_x`` (or ``train/x``, ``val/x``) share the panel ``x``. Uses matplotlib's
    object API (no pyplot state, no display needed).

    Args:
        history: ``{"train_loss": [...], "val_miou": [...]}``, a list of per-epoch dicts, or an object with
            ``to_dict()`` (such as the History returned by ``encdec.fit``).
        path: If given, the figure is saved there (PNG, SVG, PDF by extension).
        keys: Only these series (default: every numeric series).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ImportError: When matplotlib is not installed (the message says how to install it).

    Example:
        >>> fig = plot_history({"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "val_miou": [0.2, 0.4]})
        >>> len(fig.axes)
        2
    """
    Figure = _require_matplotlib()
    series = _series(history)
    if keys is not None:
        missing = [k for k in keys if k not in series]
        if missing:
            raise KeyError(f"history has no series {missing}; it has {sorted(series)}")
        series = {k: series[k] for k in keys}
    panels: Dict[str, List[str]] = {}
    for name in series:
        base = name
        for prefix in ("train_", "val_", "train/", "val/", "valid_", "test_"):
            if name.startswith(prefix):
                base = name[len(prefix) :]
                break
        panels.setdefault(base, []).append(name)
    n = max(1, len(panels))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows), layout="constrained")
    for i, (base, names) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name in names:
            values = series[name]
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if path is not None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=100)
    return fig
