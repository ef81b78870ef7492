"""Your own images and masks: ``SegmentationFolder`` pairs image and mask files by name, reads the classes from a
small file (or discovers them in the masks) and splits off validation images with a seed.

Layouts (``ROOT`` is the folder given, or the list file):

* ``ROOT/images/`` + ``ROOT/masks/``: pairs by file name without its extension (``images/cat1.jpg`` with
  ``masks/cat1.png``; sub-folders pair by their path); a seeded ``val_fraction`` is held out for validation.
* ``ROOT/train/{images,masks}/`` + ``ROOT/val/{images,masks}/``: the given split.
* A list file ``ROOT`` (any ``.txt``): one ``IMAGE MASK`` pair a line (a tab between them when the paths hold
  spaces), relative to the list's folder; a seeded ``val_fraction`` is held out.

Masks are palette PNGs (the pixel values are the indices) or grayscale PNGs of class indices, ``0``/``255``
binary masks (255 read as 1), or RGB colour masks read through the colours of ``classes.json``. The classes come
from ``classes.json`` / ``classes.txt`` beside the folders (see ``read_classes``), or are discovered in the masks
(``discover_classes``), which is said in a warning.

Example:
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for folder in ("images", "masks"):
    ...     (root / folder).mkdir()
    >>> for i in range(5):
    ...     Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(root / "images" / f"photo{i}.jpg")
    ...     Image.fromarray(np.eye(16, dtype=np.uint8) * 2).save(root / "masks" / f"photo{i}.png")
    >>> _ = (root / "classes.txt").write_text("background\\nroad\\nline\\n")
    >>> train = SegmentationFolder(root, "train")
    >>> len(train), len(SegmentationFolder(root, "val")), train.class_names
    (4, 1, ['background', 'road', 'line'])
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS

from ..colors import class_colours
from ._base import ImageMaskDataset, is_hidden
from ._checks import stratified_split, upright_size
from ._classes import FolderClasses, FolderError, discover_classes, read_classes

__all__ = ["FOLDER_LAYOUT", "FolderError", "FolderPairs", "SegmentationFolder", "find_pairs"]

#: The layouts ``SegmentationFolder`` reads, in words (used in messages and ``encdec train --help``).
FOLDER_LAYOUT = ("a folder with images/ and masks/ (files paired by name; a seeded share held out for "
                 "validation), or with train/{images,masks} and val/{images,masks}, or a list file of IMAGE MASK "
                 "lines; classes from classes.json or classes.txt beside them, else discovered in the masks")
_SPLITS = ("train", "val", "all")
Pair = Tuple[Path, Path]
Problem = Tuple[str, str]


@dataclass
class FolderPairs:
    """What ``find_pairs`` found: the pairs of each given split (``{"all": ...}`` when none is given), the files
    that cannot be used with the reason, the folder the classes file belongs in, and the layout in words.

    Example:
        >>> FolderPairs({"all": []}, layout="images/ and masks/").problems
        []
    """

    splits: Dict[str, List[Pair]]
    problems: List[Problem] = field(default_factory=list)
    classes_folder: Path = Path(".")
    layout: str = ""


def _is_image(path: Path, top: Path) -> bool:
    return (path.is_file() and path.suffix.lower() in IMG_EXTENSIONS
            and not any(is_hidden(part) for part in path.relative_to(top).parts))


def _by_name(folder: Path) -> Tuple[Dict[str, Path], List[Problem]]:
    """Image files under ``folder`` by their path without extension; two files of one name are a problem."""
    found: Dict[str, Path] = {}
    problems: List[Problem] = []
    for path in sorted(p for p in folder.rglob("*") if _is_image(p, folder)):
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            problems.append((str(path), f"has the same name as {found[key].name}; pairs are made by name, so keep "
                                        "one of them"))
        else:
            found[key] = path
    return found, problems


def _pair_folders(images: Path, masks: Path) -> Tuple[List[Pair], List[Problem]]:
    for folder in (images, masks):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder} is not a folder; {FOLDER_LAYOUT}")
    image_files, problems = _by_name(images)
    mask_files, mask_problems = _by_name(masks)
    problems += mask_problems
    if not image_files:
        raise FileNotFoundError(f"no images in {images} (extensions: {', '.join(IMG_EXTENSIONS)})")
    pairs = [(image_files[k], mask_files[k]) for k in sorted(image_files) if k in mask_files]
    problems += [(str(image_files[k]), f"has no mask {k}.* in {masks}") for k in sorted(image_files)
                 if k not in mask_files]
    problems += [(str(mask_files[k]), f"has no image {k}.* in {images}") for k in sorted(mask_files)
                 if k not in image_files]
    return pairs, problems


def _read_list(list_file: Path) -> Tuple[List[Pair], List[Problem]]:
    pairs: List[Pair] = []
    problems: List[Problem] = []
    base = list_file.parent
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split("\t") if "\t" in text else text.split()
        if len(parts) != 2:
            raise FolderError(f"{list_file}, line {number}: expected IMAGE MASK (two paths; a tab between them when "
                              f"they hold spaces), got {text[:120]!r}")
        image, mask = (base / p.strip() for p in parts)
        missing = [str(p) for p in (image, mask) if not p.is_file()]
        if missing:
            problems.append((f"{list_file}:{number}", f"lists {' and '.join(missing)}, which is not there"))
        else:
            pairs.append((image, mask))
    if not pairs and not problems:
        raise FolderError(f"{list_file} lists no IMAGE MASK pairs")
    return pairs, problems


def _size(path: Path) -> Optional[Tuple[int, int]]:
    try:
        return upright_size(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None  # an unreadable file is found and named when it is read


def find_pairs(root: Any) -> FolderPairs:
    """The image/mask pairs under ``root`` in one of the layouts of ``SegmentationFolder``, and the files that
    cannot be used: an image without a mask, a mask without an image, two files of one name, a mask of another
    size than its image (each with the reason).

    Raises:
        FileNotFoundError: ``root`` is not there, or is in none of the layouts (the message lists them).
        FolderError: A list file line that is not ``IMAGE MASK``.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> (root / "images").mkdir(); (root / "masks").mkdir()
        >>> Image.new("RGB", (8, 8)).save(root / "images" / "a.jpg")
        >>> Image.new("L", (8, 4)).save(root / "masks" / "a.png")
        >>> Image.new("L", (8, 8)).save(root / "masks" / "b.png")
        >>> [reason.split(" in ")[0] for _, reason in find_pairs(root).problems]
        ['has no image b.*', 'is 8x4 (width x height), its image a.jpg 8x8; they must match']
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist; expected {FOLDER_LAYOUT}")
    if root.is_file():
        pairs, problems = _read_list(root)
        found = FolderPairs({"all": pairs}, problems, root.parent, f"the list file {root.name}")
    elif (root / "train").is_dir():
        found = FolderPairs({}, [], root, "train/ and val/ folders")
        for split in ("train", "val"):
            pairs, problems = _pair_folders(root / split / "images", root / split / "masks")
            found.splits[split] = pairs
            found.problems += problems
    elif (root / "images").is_dir() or (root / "masks").is_dir():
        pairs, problems = _pair_folders(root / "images", root / "masks")
        found = FolderPairs({"all": pairs}, problems, root, "images/ and masks/")
    else:
        raise FileNotFoundError(f"{root} holds neither images/ and masks/ nor train/ and val/ folders; expected "
                                f"{FOLDER_LAYOUT}")
    for split, pairs in found.splits.items():
        kept = []
        for image, mask in pairs:
            image_size, mask_size = _size(image), _size(mask)
            if image_size is not None and mask_size is not None and image_size != mask_size:
                found.problems.append((str(mask), f"is {mask_size[0]}x{mask_size[1]} (width x height), its image "
                                                  f"{image.name} {image_size[0]}x{image_size[1]}; they must match"))
            else:
                kept.append((image, mask))
        found.splits[split] = kept
    return found


def _refuse_or_warn(root: Path, problems: List[Problem], skip_corrupt: bool) -> None:
    if not problems:
        return
    shown = "\n".join(f"  {file}: {reason}" for file, reason in problems[:10])
    more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
    if not skip_corrupt:
        raise FolderError(f"{len(problems)} files under {root} cannot be used:\n{shown}{more}\nfix or remove them, "
                          "or pass skip_corrupt=True (encdec: --skip-corrupt) to leave them out")
    warnings.warn(f"leaving out {len(problems)} files under {root} that cannot be used:\n{shown}{more}",
                  RuntimeWarning, stacklevel=3)


class SegmentationFolder(ImageMaskDataset):
    """Your own ``(image, mask)`` pairs, in one of the layouts of this module, with the classes of
    ``classes.json`` / ``classes.txt`` or of the masks.

    Items are ``(image, mask)``: without ``transforms`` a uint8 image ``(3, H, W)`` and an int64 mask ``(H, W)``
    of labels. Files that cannot be paired are refused when the dataset is made (the message names each one), or
    left out and listed in ``left_out`` with ``skip_corrupt=True``; mask values that are no class, and colours
    outside the table, are refused by name when the sample is read (``encdec.datasets.check.check_dataset``
    reads them all).

    Args:
        root: The folder (or the list file).
        split: ``"train"``, ``"val"`` or ``"all"`` (every pair of every split).
        transforms: Joint ``transforms(image, mask) -> (image, mask)``, e.g.
            ``encdec.datasets.presets.segmentation_train``.
        val_fraction: Share held out for ``"val"`` when the layout gives no validation folder.
        seed: Seed of that split (the same seed gives the same split on every machine).
        skip_corrupt: Leave out files that cannot be paired (``left_out``) and substitute the next readable sample
            for an unreadable one (``skipped``), instead of raising.

    Attributes:
        class_names: One name per class.
        num_classes: Their number.
        ignore_index: The ignore label of ``classes.json``, or ``None``.
        colors: The class colours of ``classes.json`` (``[r, g, b]`` lists), else ``encdec.colors.class_colours``.
        palette: The same colours, for the pictures of ``encdec.viz``.
        classes_source: ``"classes.json"``, ``"classes.txt"`` or ``"discovered from the masks"``.
        data_split: How the split was made: the layout, and ``val_fraction`` and ``seed`` when it was drawn.
        left_out: ``(file, reason)`` of the files left out with ``skip_corrupt=True``.

    Raises:
        FileNotFoundError: ``root`` is missing or in none of the layouts.
        FolderError: Files that cannot be paired (without ``skip_corrupt``), or a classes file that does not parse.
        ValueError: An unknown split, or ``val_fraction`` outside ``[0, 1)``.

    Example:
        >>> from encdec.datasets import SegmentationFolder, presets  # doctest: +SKIP
        >>> train = SegmentationFolder("data/leaves", "train", presets.segmentation_train(256))  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Any,
        split: str = "train",
        transforms: Optional[Callable[..., Any]] = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        skip_corrupt: bool = False,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
        self.root = Path(root).expanduser()
        self.split = split
        found = find_pairs(self.root)
        _refuse_or_warn(self.root, found.problems, skip_corrupt)
        self.left_out: List[Problem] = list(found.problems)
        every = [pair for pairs in found.splits.values() for pair in pairs]
        classes = self._classes(found.classes_folder, [mask for _, mask in every], skip_corrupt)
        if "all" in found.splits:
            pairs = found.splits["all"]
            train, val = stratified_split([0] * len(pairs), val_fraction, seed)
            samples = pairs if split == "all" else [pairs[i] for i in (train if split == "train" else val)]
            self.data_split: Dict[str, Any] = {"layout": found.layout, "val_fraction": val_fraction, "seed": seed}
        else:
            samples = every if split == "all" else found.splits[split]
            self.data_split = {"layout": found.layout}
        self.classes = classes
        self.class_names = list(classes.names)
        self.num_classes = classes.num_classes
        self.ignore_index = classes.ignore_index
        self.classes_source = classes.source
        self.colors = [list(c) for c in classes.colors] if classes.colors else class_colours(classes.num_classes)
        self.palette = self.colors
        self.mask_colours = classes.mask_colours()
        super().__init__(samples, classes.label_map(), transforms, skip_corrupt)

    def _classes(self, folder: Path, masks: List[Path], skip_corrupt: bool) -> FolderClasses:
        classes = read_classes(folder)
        if classes is not None:
            return classes
        classes, unreadable = discover_classes(masks, skip_corrupt)
        named = ", ".join(classes.names)
        read_as = "" if classes.values is None else \
            f" (stored values {', '.join(map(str, classes.values))} read as labels 0-{classes.num_classes - 1})"
        warnings.warn(f"{folder} has no classes.json or classes.txt: {classes.num_classes} classes discovered from "
                      f"the values of {len(masks) - len(unreadable)} masks: {named}{read_as}; write classes.txt "
                      "(one name per line) to name them", UserWarning, stacklevel=3)
        return classes
