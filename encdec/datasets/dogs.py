"""Dog images (Stanford Dogs / Kaggle layout): one folder per class."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from torchvision.datasets.folder import IMG_EXTENSIONS

from ..image_files import MAX_PIXELS
from ._base import ImageLabelDataset, is_hidden
from ._checks import stratified_split

__all__ = ["DogImages", "clean_class_name"]

_WNID = re.compile(r"^n\d{8}-(.+)$")
_SPLITS = ("train", "val", "all")


def clean_class_name(folder: str) -> str:
    """Strip the WordNet id of a Stanford Dogs folder name: ``n02085620-Chihuahua`` -> ``Chihuahua``.

    Args:
        folder: A class folder name.

    Returns:
        The name without its ``nXXXXXXXX-`` prefix (other names are returned unchanged).

    Example:
        >>> clean_class_name("n02085620-Chihuahua"), clean_class_name("beagle")
        ('Chihuahua', 'beagle')
    """
    m = _WNID.match(folder)
    return m.group(1) if m else folder


class DogImages(ImageLabelDataset):
    """Images in one folder per class, like Stanford Dogs (``root/n02085620-Chihuahua/*.jpg``).

    Class folders are sorted by folder name (as ``torchvision.datasets.ImageFolder`` does); hidden folders and
    files (``.DS_Store``, ``._x.jpg``, ``__MACOSX``) and files that are not images (by extension) are skipped.
    Items are ``(image, label)``: a uint8 tensor ``(3, H, W)`` (or ``transform(image)``) and an int.

    Args:
        root: Folder of class folders.
        split: ``"train"`` / ``"val"``: a seeded split stratified by class, holding out ``val_fraction`` of
            each class; ``"all"``: every image. For a layout already split into folders, point ``root`` at
            one of them and use ``"all"``.
        transform: Applied to the image tensor, e.g. ``encdec.datasets.presets.dogs_train``.
        val_fraction: Share of each class held out for ``"val"``.
        seed: Seed of the split.
        skip_corrupt: Substitute the next readable sample for an unreadable file (recorded in ``skipped``).
        max_pixels: Largest ``width * height`` of an image read; a larger file is refused before it is
            decoded with ``encdec.image_files.ImageTooLargeError`` (default ``encdec.image_files.MAX_PIXELS``,
            Pillow's decompression-bomb threshold; ``None``: no limit). Images are read upright by their EXIF
            orientation.

    Attributes:
        classes: Clean class names (``Chihuahua``), index = label; the raw folder names are in ``folders``.
        class_names: Same as ``classes``.
        class_to_idx: Clean class name -> label.
        num_classes: Number of classes.
        samples: ``(path, label)`` of every image in the split.

    Raises:
        FileNotFoundError: ``root`` missing, or holding no class folders.
        ValueError: An unknown split, or a class folder without images (named).

    Example:
        >>> from encdec.datasets import DogImages, presets  # doctest: +SKIP
        >>> ds = DogImages("data/Images", "train", transform=presets.dogs_train())  # doctest: +SKIP
        >>> ds.class_to_idx["Chihuahua"]  # doctest: +SKIP
        0
    """

    def __init__(
        self,
        root: Any,
        split: str = "train",
        transform: Optional[Callable[..., Any]] = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        skip_corrupt: bool = False,
        max_pixels: Optional[int] = MAX_PIXELS,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"dog image folder not found: {self.root}")
        self.split = split
        folders = sorted(p.name for p in self.root.iterdir() if p.is_dir() and not is_hidden(p.name))
        if not folders:
            raise FileNotFoundError(f"no class folders in {self.root}: expected one sub-folder of images per class")
        all_samples: List[Tuple[Path, int]] = []
        empty = []
        for label, folder in enumerate(folders):
            files = sorted(
                p
                for p in (self.root / folder).rglob("*")
                if p.is_file()
                and not any(is_hidden(part) for part in p.relative_to(self.root).parts)
                and p.suffix.lower() in IMG_EXTENSIONS
            )
            if not files:
                empty.append(folder)
            all_samples.extend((p, label) for p in files)
        if empty:
            raise ValueError(
                f"class folders without images in {self.root}: {empty} (image extensions: {IMG_EXTENSIONS})"
            )
        names = [clean_class_name(f) for f in folders]
        if len(set(names)) != len(names):  # two ids with the same breed name: keep the folder names
            names = list(folders)
        self.folders: List[str] = folders
        self.classes: List[str] = names
        self.class_names = names
        self.class_to_idx: Dict[str, int] = {name: i for i, name in enumerate(names)}
        self.num_classes = len(names)
        if split != "all":
            train, val = stratified_split([y for _, y in all_samples], val_fraction, seed)
            all_samples = [all_samples[i] for i in (train if split == "train" else val)]
        super().__init__(all_samples, transform, skip_corrupt, max_pixels)
