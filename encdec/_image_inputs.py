"""The images ``predict`` is given, read as normalised float rows on demand.

``predict`` accepts file paths, PIL images, NumPy arrays and tensors. :class:`ImageRows` checks one of them
(type, shape, dtype, channels, and for files and PIL images the pixel limit, before anything is decoded) and keeps
it as it came -- a file is decoded once, in its own mode (a palette PNG stays one byte a pixel) -- and
:meth:`ImageRows.rows` converts a band of rows to normalised float32 when it is needed. Tiled prediction asks for
one band of tiles at a time, so the float copy of a large image never exists whole.

Example:
    >>> import numpy as np, torch
    >>> mean, std = torch.zeros(3, 1, 1), torch.ones(3, 1, 1)
    >>> rows = ImageRows(np.full((4, 5, 3), 255, dtype=np.uint8), mean, std, "image 1")
    >>> rows.shape, rows.rows(1, 3).shape, float(rows.rows(1, 3).max())
    ((3, 4, 5), torch.Size([3, 2, 5]), 1.0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np
import torch

from .image_files import check_pixels, open_image

__all__ = ["ImageRows"]


class ImageRows:
    """One image (path, PIL image, array ``(H, W[, C])`` or tensor ``(C, H, W)``) whose rows are converted to
    normalised float ``(C, h, W)`` on demand: uint8 values are scaled to ``[0, 1]``, then ``(x - mean) / std``; a
    one-channel image meets three-channel statistics as three equal channels.

    Args:
        image: The image. A path is opened once and decoded upright by its EXIF orientation
            (``encdec.image_files.open_image``); PIL images other than ``RGB`` and ``L`` are converted to RGB band
            by band.
        mean: ``(C, 1, 1)`` float32 mean.
        std: ``(C, 1, 1)`` float32 std.
        name: How the image is named in errors (``"image 3"``); a path names itself.
        max_pixels: Largest ``width * height`` of a file or PIL image (``None``: no limit).

    Attributes:
        shape: ``(C, H, W)`` of the converted image.
        device: Where :meth:`rows` puts its result (``to`` sets it).

    Raises:
        encdec.image_files.ImageTooLargeError: A file or PIL image above ``max_pixels`` (nothing decoded).
        TypeError: Not an image type, or values neither uint8 nor floating point.
        ValueError: An array of another shape, or channels that do not match ``mean`` / ``std``.
    """

    def __init__(self, image: Any, mean: torch.Tensor, std: torch.Tensor, name: str,
                 max_pixels: Optional[int] = None) -> None:
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            if not path.exists() and "\0" not in str(path):
                raise FileNotFoundError(f"predict: image file {str(path)!r} does not exist")
            image = open_image(path, max_pixels)  # one non-blocking open; the size checked before decoding
        elif type(image).__module__.startswith("PIL."):
            check_pixels(name, image.size, max_pixels)  # a lazily opened image is not decoded yet
        self.mean, self.std, self.device = mean, std, torch.device("cpu")
        self.source, channels, dtype = _checked(image)
        if self._pil:
            height, width = image.size[1], image.size[0]
        elif isinstance(self.source, np.ndarray):
            height, width = self.source.shape[:2]
        else:
            height, width = self.source.shape[-2:]
        if channels == 1 and mean.shape[0] == 3:
            channels = 3
        if channels != mean.shape[0]:
            raise ValueError(f"predict: image has {channels} channels but mean/std have {mean.shape[0]}; "
                             "pass mean= and std= with one value per channel")
        self.uint8 = dtype == torch.uint8
        self.shape: Tuple[int, int, int] = (channels, int(height), int(width))

    @property
    def _pil(self) -> bool:
        return type(self.source).__module__.startswith("PIL.")

    def to(self, device: torch.device) -> ImageRows:
        """The same image, its rows delivered on ``device``."""
        self.device = torch.device(device)
        return self

    def rows(self, top: int, bottom: int) -> torch.Tensor:
        """Rows ``[top, bottom)`` as normalised float32 ``(C, bottom - top, W)`` on ``device`` (a new tensor)."""
        height = self.shape[1]
        if self._pil:
            array = _pil_rows(self.source, top, bottom) if (top, bottom) != (0, height) else _array(self.source)
            raw = torch.from_numpy(array.astype(np.float32)).reshape(bottom - top, self.shape[2], -1).permute(2, 0, 1)
        elif isinstance(self.source, np.ndarray):
            raw = torch.from_numpy(self.source[top:bottom].astype(np.float32)).permute(2, 0, 1)
        else:
            raw = self.source[:, top:bottom].to(torch.float32, copy=True)
        if self.uint8:
            raw.div_(255.0)
        if raw.shape[0] != self.mean.shape[0]:  # one channel against three-channel statistics: broadcast
            out = (raw - self.mean) / self.std
        else:
            out = raw.sub_(self.mean).div_(self.std)
        return out.to(self.device)

    def whole(self) -> torch.Tensor:
        """Every row (``rows(0, H)``)."""
        return self.rows(0, self.shape[1])


#: Pixels of one crop of a band: far below Pillow's decompression-bomb check, which ``crop`` applies too.
_CROP_PIXELS = 1 << 24


def _array(image: Any) -> np.ndarray:
    """A PIL image's pixels, converted to RGB unless they are RGB or gray already."""
    return np.asarray(image if image.mode in ("RGB", "L") else image.convert("RGB"))


def _pil_rows(image: Any, top: int, bottom: int) -> np.ndarray:
    """Rows ``[top, bottom)`` of a PIL image as an array, cropped in pieces of at most ``_CROP_PIXELS``."""
    width = image.size[0]
    step = max(1, _CROP_PIXELS // max(1, bottom - top))
    parts = [_array(image.crop((x, top, min(x + step, width), bottom))) for x in range(0, width, step)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def _checked(image: Any) -> Tuple[Any, int, torch.dtype]:
    """The image kept for reading rows (arrays as ``(H, W, C)``), its channel count and value dtype."""
    if type(image).__module__.startswith("PIL."):
        return image, 1 if image.mode == "L" else 3, torch.uint8
    if isinstance(image, np.ndarray):
        array = image[:, :, None] if image.ndim == 2 else image
        if array.ndim != 3:
            raise ValueError(f"predict: an image array must be (H, W) or (H, W, C), got shape {image.shape}")
        if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"predict: image values must be uint8 or floating point, got {array.dtype}")
        return array, array.shape[2], torch.uint8 if array.dtype == np.uint8 else torch.float32
    if isinstance(image, torch.Tensor):
        if image.dim() != 3:
            raise ValueError(f"predict: an image tensor must be (C, H, W), got shape {tuple(image.shape)}")
        if image.dtype != torch.uint8 and not image.is_floating_point():
            raise TypeError(f"predict: image values must be uint8 or floating point, got {image.dtype}")
        return image, image.shape[0], image.dtype
    raise TypeError(f"predict: cannot read an image from {type(image).__name__}; pass a tensor, PIL image, NumPy "
                    "array or file path")

