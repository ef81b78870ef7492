"""The classes of a folder of images and masks: named by ``classes.json`` or ``classes.txt`` beside the folders, or
discovered from the values the masks hold."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from ._checks import CorruptImageError, LabelMap, read_mask

__all__ = ["CLASSES_FILES", "FolderClasses", "FolderError", "discover_classes", "read_classes"]

PathLike = Union[str, "os.PathLike[str]"]
Colour = Tuple[int, int, int]

#: The files that name the classes of a folder, looked for in this order (at most one may be there).
CLASSES_FILES = ("classes.json", "classes.txt")
_JSON_KEYS = ("names", "colors", "ignore_index", "ignore_color")
_JSON_FORM = ('a list of class names, or {"names": [...], "colors": [[r, g, b], ...], "ignore_index": 255, '
              '"ignore_color": [r, g, b]} (colors and the ignore entries optional)')
#: Names given to the two classes of masks that hold 0 and 1 (or 0 and 255) when no file names them.
BINARY_NAMES = ("background", "foreground")


class FolderError(ValueError):
    """A folder of images and masks that cannot be read as it is: files without their partner, a mask of another
    size than its image, a classes file that does not parse. The message names the files at fault.

    Example:
        >>> str(FolderError("masks/b.png: no image b.* in images/")).startswith("masks/b.png")
        True
    """


@dataclass(frozen=True)
class FolderClasses:
    """The classes of a folder and how its masks' stored values become labels.

    Attributes:
        names: One name per class; the label of a class is its position.
        colors: ``(r, g, b)`` per class: the colours of RGB masks, and of the pictures; ``None`` when not given.
        ignore_index: A stored value that is no class (left out of loss and metrics), or ``None``.
        ignore_color: The colour of the ignore label in RGB masks (needs ``colors``), or ``None``.
        source: Where the classes came from: ``"classes.json"``, ``"classes.txt"`` or ``"discovered from the
            masks"``.
        values: For discovered classes, the stored mask value of each class (``None``: the value is the label).

    Example:
        >>> classes = FolderClasses(("background", "cat"))
        >>> classes.num_classes, classes.label_map().description
        (2, '0 (background), 1 (cat); 255 is read as 1 (0/255 masks)')
    """

    names: Tuple[str, ...]
    colors: Optional[Tuple[Colour, ...]] = None
    ignore_index: Optional[int] = None
    ignore_color: Optional[Colour] = None
    source: str = "classes.json"
    values: Optional[Tuple[int, ...]] = None

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.names)

    def label_map(self) -> LabelMap:
        """Stored mask value -> label: the value itself (plus 255 -> 1 for two classes, the 0/255 binary masks),
        or the discovered values in order; the ignore label stays itself.

        Example:
            >>> FolderClasses(("a", "b", "c"), values=(0, 4, 9)).label_map()(np.array([[9, 0, 4]], np.uint8), "m")
            array([[2, 0, 1]], dtype=uint8)
        """
        stored = self.values if self.values is not None else tuple(range(self.num_classes))
        mapping = {value: label for label, value in enumerate(stored)}
        described = ", ".join(f"{v} ({n})" if v == i else f"{v} (class {i}, {n})"
                              for i, (v, n) in enumerate(zip(stored, self.names)))
        if self.values is None and self.num_classes == 2 and self.ignore_index != 255:
            mapping[255] = 1
            described += "; 255 is read as 1 (0/255 masks)"
        if self.ignore_index is not None:
            mapping[self.ignore_index] = self.ignore_index
            described += f"; {self.ignore_index} is the ignore label"
        return LabelMap(mapping, described)

    def mask_colours(self) -> Optional[Dict[Colour, int]]:
        """``(r, g, b) -> stored value`` for masks saved as RGB colours, or ``None`` when no colours are given.

        Example:
            >>> FolderClasses(("bg", "cat"), colors=((0, 0, 0), (255, 0, 0))).mask_colours()
            {(0, 0, 0): 0, (255, 0, 0): 1}
        """
        if self.colors is None:
            return None
        table = {colour: label for label, colour in enumerate(self.colors)}
        if self.ignore_color is not None and self.ignore_index is not None:
            table[self.ignore_color] = self.ignore_index
        return table


def _names(value: Any, where: str) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n.strip() for n in value):
        raise FolderError(f"{where}: the class names must be a list of non-empty strings, got {str(value)[:120]}")
    names = tuple(n.strip() for n in value)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise FolderError(f"{where}: class names {repeated} appear more than once; name every class once")
    if not 2 <= len(names) <= 255:
        raise FolderError(f"{where}: {len(names)} class names; a segmentation needs 2 to 255 classes (the "
                          "background counts as one)")
    return names


def _colour(value: Any, where: str) -> Colour:
    if not (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        raise FolderError(f"{where}: a colour must be [r, g, b] with whole numbers 0-255, got {str(value)[:60]}")
    return (int(value[0]), int(value[1]), int(value[2]))


def _from_json(path: Path) -> FolderClasses:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise FolderError(f"{path}: not valid JSON ({error}); write {_JSON_FORM}") from None
    if isinstance(data, list):
        data = {"names": data}
    if not isinstance(data, dict) or "names" not in data:
        raise FolderError(f"{path}: expected {_JSON_FORM}")
    unknown = sorted(set(data) - set(_JSON_KEYS))
    if unknown:
        raise FolderError(f"{path}: unknown entries {unknown}; the entries are {', '.join(_JSON_KEYS)}")
    names = _names(data["names"], str(path))
    colors = None
    if data.get("colors") is not None:
        raw = data["colors"]
        if not isinstance(raw, list) or len(raw) != len(names):
            raise FolderError(f"{path}: 'colors' must list one [r, g, b] per class name ({len(names)}), got "
                              f"{str(raw)[:120]}")
        colors = tuple(_colour(c, f"{path}: colors[{i}] ({names[i]})") for i, c in enumerate(raw))
        repeated = sorted({c for c in colors if colors.count(c) > 1})
        if repeated:
            raise FolderError(f"{path}: colours {repeated} are given to more than one class")
    ignore = data.get("ignore_index")
    if ignore is not None and (isinstance(ignore, bool) or not isinstance(ignore, int)
                               or not len(names) <= ignore <= 255):
        raise FolderError(f"{path}: 'ignore_index' must be a whole number from {len(names)} (after the class "
                          f"labels 0-{len(names) - 1}) to 255, got {ignore!r}")
    ignore_color = None
    if data.get("ignore_color") is not None:
        if colors is None or ignore is None:
            raise FolderError(f"{path}: 'ignore_color' needs 'colors' and 'ignore_index' (it is the colour of the "
                              "ignore label in RGB masks)")
        ignore_color = _colour(data["ignore_color"], f"{path}: ignore_color")
        if ignore_color in colors:
            raise FolderError(f"{path}: ignore_color {list(ignore_color)} is also the colour of class "
                              f"{names[colors.index(ignore_color)]!r}")
    return FolderClasses(names, colors, ignore, ignore_color, source=path.name)


def _from_txt(path: Path) -> FolderClasses:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise FolderError(f"{path}: not a text file ({error}); write one class name per line") from None
    names = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return FolderClasses(_names(names, str(path)), source=path.name)


def read_classes(folder: PathLike) -> Optional[FolderClasses]:
    """The classes named by ``classes.json`` or ``classes.txt`` in ``folder``; ``None`` when neither is there.

    ``classes.json`` holds a list of names, or an object with ``names``, optional ``colors`` (one ``[r, g, b]``
    per class: the colours of RGB masks and of the pictures), ``ignore_index`` (a stored value that is no class)
    and ``ignore_color`` (its colour in RGB masks). ``classes.txt`` holds one name per line (``#`` lines and blank
    lines are skipped). The label of a class is its position in the list.

    Args:
        folder: The folder holding the classes file.

    Returns:
        The ``FolderClasses``, or ``None``.

    Raises:
        FolderError: Both files are there, or the one there does not parse (the message says what is wrong).

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "classes.txt").write_text("background\\nroad\\ncar\\n")
        >>> read_classes(folder).names
        ('background', 'road', 'car')
    """
    folder = Path(folder)
    present = [folder / name for name in CLASSES_FILES if (folder / name).is_file()]
    if len(present) > 1:
        raise FolderError(f"{folder} holds both {present[0].name} and {present[1].name}; keep one of them")
    if not present:
        return None
    return _from_json(present[0]) if present[0].suffix == ".json" else _from_txt(present[0])


def _stored_values(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            mode = im.mode
    except FileNotFoundError:
        raise FileNotFoundError(f"mask file not found: {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise CorruptImageError(path, error) from error
    if mode in ("RGB", "RGBA"):
        raise FolderError(f"mask {path} is an RGB image; masks saved as colours need a colour table: list the "
                          f"classes with their colours in {CLASSES_FILES[0]} ({_JSON_FORM}), or save the masks as "
                          "palette or grayscale PNGs of class indices")
    mask = read_mask(path)
    present = np.flatnonzero(np.bincount(mask.ravel(), minlength=256)) if mask.dtype == np.uint8 else np.unique(mask)
    if present.size and (present.min() < 0 or present.max() > 255):
        raise FolderError(f"mask {path} holds values {present[(present < 0) | (present > 255)][:5].tolist()} outside "
                          "0-255; class labels are 0-254 (and an ignore label)")
    return present


def discover_classes(masks: Sequence[PathLike], skip_corrupt: bool = False) -> Tuple[FolderClasses, List[str]]:
    """Classes found in the masks when no file names them: the sorted set of the values they hold.

    Masks holding 0 and 1, or 0 and 255, are two classes named ``background`` and ``foreground`` (255 read as 1).
    Otherwise each value is a class named by the value (``"0"``, ``"3"``, ...); values with gaps (0, 3, 7) are
    read as the labels 0, 1, 2 in that order.

    Args:
        masks: Every mask file of the folder (all splits, so that they agree).
        skip_corrupt: Leave out masks that cannot be decoded (returned) instead of raising.

    Returns:
        ``(classes, unreadable)``: the classes (``source="discovered from the masks"``) and the masks left out.

    Raises:
        FolderError: An RGB mask (its colours need a table), values above 255, or fewer than two values in all.
        CorruptImageError: A mask that cannot be decoded, unless ``skip_corrupt``.

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "m.png")
        >>> Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).save(path)
        >>> discover_classes([path])[0].names
        ('background', 'foreground')
    """
    found: set = set()
    unreadable: List[str] = []
    for path in masks:
        try:
            found.update(int(v) for v in _stored_values(Path(path)))
        except CorruptImageError:
            if not skip_corrupt:
                raise
            unreadable.append(str(path))
    values = tuple(sorted(found))
    source = "discovered from the masks"
    if len(values) < 2:
        raise FolderError(f"the {len(masks)} masks hold {'only the value ' + str(values[0]) if values else 'no value'}"
                          f"; a segmentation needs at least two classes: name them in {CLASSES_FILES[1]} (one per "
                          "line) or check that the masks hold the class indices")
    if values in ((0, 1), (0, 255)):
        return FolderClasses(BINARY_NAMES, source=source, values=values if values == (0, 255) else None), unreadable
    identity = values == tuple(range(len(values)))
    return FolderClasses(tuple(str(v) for v in values), source=source,
                         values=None if identity else values), unreadable
