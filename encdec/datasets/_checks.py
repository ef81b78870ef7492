"""Errors and checks shared by the datasets: readable images, labels in range, seeded stratified splits."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from .._files import NotARegularFileError
from ..image_files import MAX_PIXELS, ImageTooLargeError, UnreadableImageError, check_max_pixels, open_image

__all__ = [
    "CorruptImageError",
    "LabelError",
    "LabelMap",
    "check_mask_labels",
    "labels_from_colours",
    "read_mask",
    "read_rgb",
    "stratified_split",
    "upright_size",
]

PathLike = Union[str, "os.PathLike[str]"]


class CorruptImageError(OSError):
    """An image or mask file exists but cannot be decoded.

    Attributes:
        path: The file that failed.
        reason: Why, without the advice.

    Example:
        >>> err = CorruptImageError("a.png", "not a PNG file")
        >>> "a.png" in str(err)
        True
    """

    def __init__(self, path: PathLike, reason: object) -> None:
        self.path = str(path)
        self.reason = str(reason)
        super().__init__(
            f"cannot decode image file {self.path}: {reason}. Replace the file, or pass skip_corrupt=True to "
            "skip unreadable files"
        )


class LabelError(ValueError):
    """A mask holds values that are neither a class index nor the ignore label.

    Attributes:
        source: The file (or description) of the mask.
        values: The offending values.

    Example:
        >>> str(LabelError("m.png", [7], "[0, 3)")).startswith("mask m.png holds values [7]")
        True
    """

    def __init__(self, source: str, values: Sequence[int], valid: str) -> None:
        self.source = source
        self.values = list(values)
        shown = self.values[:20] + (["..."] if len(self.values) > 20 else [])
        super().__init__(f"mask {source} holds values {shown} outside the valid labels {valid}")


def _decoded(path: Path, max_pixels: Optional[int], what: str) -> Image.Image:
    """``encdec.image_files.open_image`` with the datasets' errors: ``FileNotFoundError`` for a missing file,
    ``CorruptImageError`` for one that cannot be decoded (or is not a regular file), ``ImageTooLargeError`` as is."""
    check_max_pixels(max_pixels)  # a bad limit is the caller's error, not the file's
    try:
        return open_image(path, max_pixels, what=what)
    except ImageTooLargeError:
        raise
    except NotARegularFileError as e:
        if e.errno == errno.ENOENT:
            raise FileNotFoundError(f"{what} file not found: {path}") from None
        raise CorruptImageError(path, e.strerror or e) from None
    except UnreadableImageError as e:
        raise CorruptImageError(path, e.reason) from e


def read_rgb(path: PathLike, max_pixels: Optional[int] = MAX_PIXELS) -> torch.Tensor:
    """Read an image file as an RGB uint8 tensor ``(3, H, W)`` (PIL decoding, as torchvision's datasets do),
    upright by its EXIF orientation (see ``encdec.image_files``).

    Args:
        path: Image file (JPEG, PNG, TIFF, ...): grayscale, palette and CMYK images are converted to RGB with
            Pillow, 16-bit images keep their high byte (``65535 -> 255``, where Pillow's own conversion clips
            everything above 255 to white).
        max_pixels: Largest ``width * height`` read; larger images are refused before decoding (``None``: no
            limit).

    Returns:
        A uint8 tensor ``(3, H, W)``.

    Raises:
        FileNotFoundError: If the file does not exist.
        CorruptImageError: If the file cannot be decoded (the message names it).
        encdec.image_files.ImageTooLargeError: The image has more than ``max_pixels`` pixels.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.new("RGB", (4, 2)).save(p)
        >>> tuple(read_rgb(p).shape)
        (3, 2, 4)
    """
    path = Path(path)
    im = _decoded(path, max_pixels, "image")
    try:
        arr = _rgb_array(im)
    except (OSError, SyntaxError, ValueError) as e:
        raise CorruptImageError(path, e) from e
    # a channels-first view of the decoded HWC buffer, as torchvision's pil_to_tensor returns (no extra copy)
    return torch.from_numpy(arr).permute(2, 0, 1)


#: The EXIF tag of a photo's orientation, and its values that turn the picture a quarter turn.
_ORIENTATION, _QUARTER_TURNS = 0x0112, (5, 6, 7, 8)


def _rgb_array(im: Image.Image) -> np.ndarray:
    if im.mode == "RGB":
        return np.array(im)
    if im.mode.startswith("I;16") or im.mode == "I":  # 16-bit (or 32-bit integer) gray: keep the high byte
        gray = np.array(im).astype(np.int64)
        if gray.max(initial=0) > 255:
            gray = np.clip(gray, 0, 65535) >> 8
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    return np.array(im.convert("RGB"))


def upright_size(path: PathLike) -> Tuple[int, int]:
    """``(width, height)`` of an image as ``read_rgb`` returns it (EXIF quarter turns applied), from its header.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> p = os.path.join(tempfile.mkdtemp(), "x.png")
        >>> Image.new("RGB", (4, 2)).save(p)
        >>> upright_size(p)
        (4, 2)
    """
    with Image.open(path) as im:
        width, height = im.size
        return (height, width) if im.getexif().get(_ORIENTATION, 1) in _QUARTER_TURNS else (width, height)


def read_mask(path: PathLike, colours: Optional[Mapping[Tuple[int, int, int], int]] = None,
              max_pixels: Optional[int] = MAX_PIXELS) -> np.ndarray:
    """Read a label PNG as its stored integers: palette indices for ``P`` images, gray levels for ``L``/``I``;
    RGB(A) masks are read through ``colours`` when given (a mask exported as colours rather than indices). A mask
    carrying an EXIF orientation is turned upright like its image (see ``encdec.image_files``).

    Args:
        path: Mask file.
        colours: ``(r, g, b) -> label`` for RGB masks; ``None`` refuses them.
        max_pixels: Largest ``width * height`` read; larger masks are refused before decoding (``None``: no
            limit).

    Returns:
        An integer array ``(H, W)`` (uint8 for 8-bit masks).

    Raises:
        FileNotFoundError: If the file does not exist.
        CorruptImageError: If it cannot be decoded, or holds colours rather than labels (RGB masks without
            ``colours``, or with colours that are not in it: the message names them).
        encdec.image_files.ImageTooLargeError: The mask has more than ``max_pixels`` pixels.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image, ImageOps
        >>> p = os.path.join(tempfile.mkdtemp(), "m.png")
        >>> Image.new("L", (3, 2), color=2).save(p)
        >>> read_mask(p).tolist()
        [[2, 2, 2], [2, 2, 2]]
    """
    path = Path(path)
    im = _decoded(path, max_pixels, "mask")
    if im.mode in ("RGB", "RGBA") and colours is not None:
        return labels_from_colours(np.asarray(im.convert("RGB")), colours, path)
    if im.mode not in ("P", "L", "I", "I;16", "1"):
        raise CorruptImageError(
            path,
            f"mode {im.mode!r} holds colours, not labels; masks must be palette ('P') or grayscale "
            "('L') PNGs whose pixel values are class indices",
        )
    arr = np.array(im)
    return arr.astype(np.uint8) if arr.dtype == bool else arr


def labels_from_colours(rgb: np.ndarray, colours: Mapping[Tuple[int, int, int], int], path: PathLike
                        ) -> np.ndarray:
    """Labels ``(H, W)`` (uint8) of an RGB mask ``(H, W, 3)`` through a colour -> label table.

    Raises:
        CorruptImageError: A colour of the mask is not in the table; the message names up to five of them.

    Example:
        >>> rgb = np.array([[[0, 0, 0], [128, 0, 0]]], dtype=np.uint8)
        >>> labels_from_colours(rgb, {(0, 0, 0): 0, (128, 0, 0): 1}, "m.png").tolist()
        [[0, 1]]
    """
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    unique, inverse = np.unique(codes, return_inverse=True)
    table = {(r << 16) | (g << 8) | b: label for (r, g, b), label in colours.items()}
    unknown = [int(code) for code in unique if int(code) not in table]
    if unknown:
        named = ", ".join(f"({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise CorruptImageError(path, f"RGB mask colours {named}{more} are not colours of the label palette; save "
                                      "masks as palette or grayscale PNGs of class indices, or use the palette's "
                                      "colours")
    labels = np.array([table[int(code)] for code in unique], dtype=np.uint8)
    return labels[inverse.reshape(codes.shape)]


def _present_values(mask: np.ndarray) -> np.ndarray:
    if mask.dtype == np.uint8:  # a 256-bin count is ~10x faster than np.unique
        return np.flatnonzero(np.bincount(mask.ravel(), minlength=256))
    return np.unique(mask)


def _invalid_values(mask: np.ndarray, valid: np.ndarray) -> List[int]:
    """Sorted values of ``mask`` whose entry in the 256-entry boolean table ``valid`` is False (or outside it)."""
    if mask.dtype == np.uint8:
        # bytes.translate deletes every allowed byte in one C pass (~4x faster than a bincount); empty = all valid
        rest = np.ascontiguousarray(mask).tobytes().translate(None, bytes(np.flatnonzero(valid).tolist()))
        return sorted(set(rest))
    present = _present_values(mask)
    in_table = (present >= 0) & (present < len(valid))
    return sorted(present[~in_table].tolist() + [v for v in present[in_table].tolist() if not valid[v]])


def check_mask_labels(
    mask: Union[np.ndarray, torch.Tensor], num_classes: int, ignore_index: Optional[int] = None, source: str = "mask"
) -> None:
    """Raise ``LabelError`` if a mask holds values outside ``[0, num_classes)`` other than ``ignore_index``.

    Args:
        mask: Integer labels (array or tensor).
        num_classes: Number of classes.
        ignore_index: The one out-of-range value allowed (e.g. 255).
        source: The file or description named in the error.

    Raises:
        LabelError: Naming ``source``, the offending values and the valid range.

    Example:
        >>> import numpy as np
        >>> check_mask_labels(np.array([[0, 1, 255]], dtype=np.uint8), 2, ignore_index=255)
        >>> check_mask_labels(np.array([[0, 5]]), 2, source="x.png")
        Traceback (most recent call last):
        ...
        encdec.datasets._checks.LabelError: mask x.png holds values [5] outside the valid labels [0, 2)
    """
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.dtype == np.uint8:
        table = np.zeros(256, dtype=bool)
        table[: min(num_classes, 256)] = True
        if ignore_index is not None and 0 <= ignore_index < 256:
            table[ignore_index] = True
        bad = _invalid_values(arr, table)
    else:
        present = _present_values(arr)
        keep = (present < 0) | (present >= num_classes)
        if ignore_index is not None:
            keep &= present != ignore_index
        bad = present[keep].tolist()
    if bad:
        valid = f"[0, {num_classes})" + ("" if ignore_index is None else f" and the ignore label {ignore_index}")
        raise LabelError(source, bad, valid)


class LabelMap:
    """Maps stored mask values to training labels with one table lookup, rejecting values not in the table.

    The result keeps a small integer type (uint8 when every label fits); datasets turn it into int64 after the
    transforms.

    Args:
        mapping: Stored value -> label, for every allowed stored value (0..255).
        description: How the allowed values are described in errors, e.g. ``"1 (pet), 2 (background), 3"``.

    Example:
        >>> import numpy as np
        >>> trimap_to_binary = LabelMap({1: 1, 2: 0, 3: 1}, "1, 2, 3")
        >>> trimap_to_binary(np.array([[1, 2, 3]], dtype=np.uint8), "t.png").tolist()
        [[1, 0, 1]]
    """

    def __init__(self, mapping: Mapping[int, int], description: str) -> None:
        small = all(0 <= v <= 255 for v in mapping.values())
        self.table = np.zeros(256, dtype=np.uint8 if small else np.int64)
        self.valid = np.zeros(256, dtype=bool)
        for src, dst in mapping.items():
            self.table[src] = dst
            self.valid[src] = True
        self.description = description
        self.identity = all(k == v for k, v in mapping.items())

    def __call__(self, mask: np.ndarray, source: str) -> np.ndarray:
        """Check and map one mask; ``source`` is the file named in errors."""
        bad = _invalid_values(mask, self.valid)
        if bad:
            raise LabelError(source, bad, self.description)
        if self.identity:  # uint8 stays uint8: transforms run on the small type, labels become int64 at the end
            return mask if mask.dtype == np.uint8 else mask.astype(np.int64)
        return self.table[mask]


def stratified_split(labels: Sequence[int], val_fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """Seeded split of sample indices into train and validation, keeping each label's share.

    Each label's samples are shuffled with ``np.random.default_rng(seed)`` and ``round(n * val_fraction)`` of
    them go to validation (none for a label with a single sample). When that rounds to no validation sample at
    all, one sample of the largest label is held out, so a non-zero fraction never gives an empty split.

    Args:
        labels: One label per sample.
        val_fraction: Share of each label held out, in ``[0, 1)``.
        seed: Seed of the shuffle.

    Returns:
        ``(train_indices, val_indices)``, each sorted.

    Example:
        >>> stratified_split([0, 0, 0, 0, 1, 1, 1, 1], 0.25, seed=0)[1].__len__()
        2
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    groups: Dict[int, List[int]] = {}
    for i, y in enumerate(labels):
        groups.setdefault(int(y), []).append(i)
    shuffled: Dict[int, List[int]] = {}
    counts: Dict[int, int] = {}
    for y in sorted(groups):
        idx = np.array(groups[y])
        rng.shuffle(idx)
        shuffled[y] = idx.tolist()
        n_val = int(round(len(idx) * val_fraction)) if len(idx) > 1 else 0
        counts[y] = min(n_val, len(idx) - 1)
    if val_fraction > 0 and not any(counts.values()):
        largest = max(sorted(groups), key=lambda y: len(groups[y]))
        if len(groups[largest]) > 1:
            counts[largest] = 1
    train = [i for y in shuffled for i in shuffled[y][counts[y]:]]
    val = [i for y in shuffled for i in shuffled[y][:counts[y]]]
    return sorted(train), sorted(val)
