"""Shared reading logic: image/mask pairs and image/label pairs, with corrupt-file skipping and label checks."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from ..image_files import MAX_PIXELS, ImageTooLargeError, check_max_pixels
from ._checks import CorruptImageError, LabelMap, read_mask, read_rgb
from .transforms import apply_paired

__all__ = [
    "ImageLabelDataset", "ImageMaskDataset", "is_hidden", "read_split_file", "resolve_root", "subset", "take",
]


def resolve_root(root: Any, candidates: Sequence[str], marker: str, expected: str) -> Path:
    """First of ``root / c`` (for c in candidates) that contains ``marker``; a clear error otherwise."""
    base = Path(root).expanduser()
    tried = [base / c if c else base for c in candidates]
    for path in tried:
        if (path / marker).exists():
            return path
    raise FileNotFoundError(
        f"no {expected} found under {base}: looked for {marker!r} in " + ", ".join(str(p) for p in tried)
    )


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is one that listings leave out: hidden (``.DS_Store``, ``._x.jpg``) or
    macOS's archive folder ``__MACOSX``.

    Example:
        >>> is_hidden(".DS_Store"), is_hidden("__MACOSX"), is_hidden("cat.jpg")
        (True, True, False)
    """
    return name.startswith(".") or name == "__MACOSX"


#: Attributes that describe a dataset's labels and preprocessing, kept by ``take``.
DESCRIPTIVE_ATTRIBUTES = ("num_classes", "ignore_index", "class_names", "mean", "std", "palette", "classes_source",
                          "data_split", "left_out")


def subset(dataset: Any, indices: Sequence[int]) -> Any:
    """A ``Subset`` of ``dataset`` that keeps its ``num_classes``, ``ignore_index``, ``class_names``, ``mean``,
    ``std`` and ``palette``.

    Example:
        >>> from encdec.datasets import SyntheticShapes
        >>> part = subset(SyntheticShapes(n=10, size=16), [0, 3])
        >>> len(part), part.num_classes
        (2, 3)
    """
    part = Subset(dataset, list(indices))
    for attr in DESCRIPTIVE_ATTRIBUTES:
        if hasattr(dataset, attr):
            setattr(part, attr, getattr(dataset, attr))
    return part


def take(dataset: Any, n: Optional[int]) -> Any:
    """The first ``n`` samples of ``dataset`` (all of them for ``None`` or ``n >= len``), as a ``Subset`` that keeps
    the dataset's ``num_classes``, ``ignore_index``, ``class_names``, ``mean``, ``std`` and ``palette``.

    Example:
        >>> from encdec.datasets import SyntheticShapes
        >>> part = take(SyntheticShapes(n=10, size=16), 4)
        >>> len(part), part.class_names
        (4, ['background', 'circle', 'square'])
    """
    if n is None or n >= len(dataset):
        return dataset
    return subset(dataset, range(n))


def read_split_file(path: Path, available: Optional[Sequence[str]] = None) -> List[str]:
    """Ids listed in a split file (first token of each non-empty, non-comment line)."""
    if not path.is_file():
        hint = f"; available splits: {sorted(available)}" if available else ""
        raise FileNotFoundError(f"split file not found: {path}{hint}")
    ids = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            ids.append(line.split()[0])
    if not ids:
        raise ValueError(f"split file {path} lists no image ids (it is empty)")
    return ids


class _SkippingDataset(Dataset):
    """Common corrupt-file handling: raise by default, or substitute the next readable sample and count (an image
    above ``max_pixels`` counts as unreadable)."""

    def __init__(self, skip_corrupt: bool, max_pixels: Optional[int] = MAX_PIXELS) -> None:
        self.skip_corrupt = skip_corrupt
        #: Largest ``width * height`` read (``None``: no limit); larger files raise ``ImageTooLargeError``.
        self.max_pixels = check_max_pixels(max_pixels)
        #: Files found unreadable so far in this process (only filled when ``skip_corrupt=True``).
        self.skipped: List[str] = []

    def _load(self, index: int) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {n}")
        index %= n
        if not self.skip_corrupt:
            return self._load(index)
        for step in range(n):
            try:
                return self._load((index + step) % n)
            except (CorruptImageError, ImageTooLargeError) as e:
                if e.path not in self.skipped:
                    self.skipped.append(e.path)
                    warnings.warn(f"skipping unreadable file {e.path}", RuntimeWarning, stacklevel=2)
        raise RuntimeError(f"{type(self).__name__}: every sample is unreadable ({len(self.skipped)} files)")

    def read_unskipped(self, index: int) -> Any:
        """Sample ``index`` read as it is, raising for an unreadable file even with ``skip_corrupt=True``."""
        return self._load(index % len(self))

    @property
    def num_skipped(self) -> int:
        """Number of unreadable files skipped so far in this process."""
        return len(self.skipped)


class ImageMaskDataset(_SkippingDataset):
    """``(image, mask)`` pairs from files: uint8 ``(3, H, W)`` image, int64 ``(H, W)`` mask before transforms.

    Subclasses set ``samples`` (image path, mask path), ``label_map``, ``num_classes``, ``ignore_index``,
    ``class_names``.
    """

    num_classes: int
    ignore_index: Optional[int]
    class_names: List[str]
    #: ``(r, g, b) -> label`` for masks saved as RGB colours; ``None``: such masks are refused.
    mask_colours: Optional[Dict[Tuple[int, int, int], int]] = None

    def __init__(
        self,
        samples: List[Tuple[Path, Path]],
        label_map: LabelMap,
        transforms: Optional[Callable[..., Any]],
        skip_corrupt: bool,
        max_pixels: Optional[int] = MAX_PIXELS,
    ) -> None:
        super().__init__(skip_corrupt, max_pixels)
        self.samples = samples
        self.label_map = label_map
        self.transforms = transforms

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.samples[index]
        image = read_rgb(image_path, self.max_pixels)
        raw = read_mask(mask_path, self.mask_colours, self.max_pixels)
        if raw.shape != tuple(image.shape[1:]):
            raise ValueError(
                f"mask {mask_path} is {raw.shape[1]}x{raw.shape[0]} but image {image_path} is "
                f"{image.shape[2]}x{image.shape[1]} (width x height); they must match"
            )
        mask = torch.from_numpy(np.ascontiguousarray(self.label_map(raw, str(mask_path))))
        return apply_paired(self.transforms, image, mask)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, num_classes={self.num_classes})"


class ImageLabelDataset(_SkippingDataset):
    """``(image, label)`` pairs from image files; ``transform`` maps the uint8 ``(3, H, W)`` image tensor."""

    num_classes: int
    class_names: List[str]
    ignore_index: Optional[int] = None

    def __init__(
        self, samples: List[Tuple[Path, int]], transform: Optional[Callable[..., Any]], skip_corrupt: bool,
        max_pixels: Optional[int] = MAX_PIXELS,
    ) -> None:
        super().__init__(skip_corrupt, max_pixels)
        self.samples = samples
        self.transform = transform

    @property
    def targets(self) -> List[int]:
        """The label of every sample, in order."""
        return [y for _, y in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> Tuple[Any, int]:
        path, label = self.samples[index]
        image: Any = read_rgb(path, self.max_pixels)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} samples, num_classes={self.num_classes})"
