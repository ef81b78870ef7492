"""Oxford-IIIT Pet segmentation (trimaps), read from the official folder layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Optional

from ..image_files import MAX_PIXELS
from ._base import ImageMaskDataset, read_split_file, resolve_root
from ._checks import LabelMap, stratified_split

__all__ = ["OxfordPetSegmentation"]

_SPLITS = ("trainval", "test", "train", "val")


class OxfordPetSegmentation(ImageMaskDataset):
    """Oxford-IIIT Pet: ``images/*.jpg`` with trimaps ``annotations/trimaps/*.png`` (1 pet, 2 background, 3 border).

    Items are ``(image, mask)``: without ``transforms`` a uint8 image ``(3, H, W)`` and an int64 mask ``(H, W)``.

    * ``mode="binary"`` (the reference mapping of the Pet report and segmentation_models_pytorch): pet and border
      -> 1, background -> 0; ``class_names = ["background", "pet"]``.
    * ``mode="trimap"``: background -> 0, pet -> 1, border -> 2; ``class_names = ["background", "pet",
      "border"]``.

    Args:
        root: The folder holding ``images/`` and ``annotations/``, or its parent holding ``oxford-iiit-pet/``
            (torchvision's layout).
        split: ``"trainval"`` or ``"test"`` (the official lists), or ``"train"`` / ``"val"``: a seeded split of
            trainval, stratified by breed, holding out ``val_fraction`` of each breed.
        mode: ``"binary"`` or ``"trimap"``.
        transforms: Joint ``transforms(image, mask) -> (image, mask)``, e.g.
            ``encdec.datasets.presets.pets_train``.
        val_fraction: Share of trainval used for ``split="val"``.
        seed: Seed of the train/val split.
        skip_corrupt: Substitute the next readable sample for an unreadable file (recorded in ``skipped``).
        max_pixels: Largest ``width * height`` of an image or mask read; a larger file is refused before it is
            decoded with ``encdec.image_files.ImageTooLargeError`` (default ``encdec.image_files.MAX_PIXELS``,
            Pillow's decompression-bomb threshold; ``None``: no limit). Images are read upright by their EXIF
            orientation.

    Attributes:
        num_classes: 2 (binary) or 3 (trimap).
        ignore_index: ``None``.
        class_names: See above.
        ids: Image ids of the split.
        breeds: Breed index (0-36) of each sample, from the split file.

    Raises:
        FileNotFoundError: No Pet layout under ``root`` or a listed id without its image or trimap.
        ValueError: An unknown split or mode, or an empty split file.

    Example:
        >>> from encdec.datasets import OxfordPetSegmentation, presets  # doctest: +SKIP
        >>> t = presets.pets_train()  # doctest: +SKIP
        >>> ds = OxfordPetSegmentation("data/oxford-iiit-pet", "train", transforms=t)  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Any,
        split: str = "trainval",
        mode: str = "binary",
        transforms: Optional[Callable[..., Any]] = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        skip_corrupt: bool = False,
        max_pixels: Optional[int] = MAX_PIXELS,
    ) -> None:
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
        if mode not in ("binary", "trimap"):
            raise ValueError(f"mode must be 'binary' or 'trimap', got {mode!r}")
        self.root = resolve_root(root, ["", "oxford-iiit-pet"], "annotations/trainval.txt", "Oxford-IIIT Pet folder")
        self.split, self.mode = split, mode
        list_name = "test" if split == "test" else "trainval"
        split_file = self.root / "annotations" / f"{list_name}.txt"
        ids = read_split_file(split_file)
        breeds = _breeds(split_file)
        if split in ("train", "val"):
            train, val = stratified_split([breeds[i] for i in ids], val_fraction, seed)
            keep = train if split == "train" else val
            ids = [ids[i] for i in keep]
        self.ids = ids
        self.breeds = [breeds[i] for i in ids]
        samples = []
        for image_id in ids:
            image = self.root / "images" / f"{image_id}.jpg"
            mask = self.root / "annotations" / "trimaps" / f"{image_id}.png"
            for kind, path in (("image", image), ("trimap", mask)):
                if not path.is_file():
                    raise FileNotFoundError(f"{kind} for id {image_id!r} listed in {split_file} not found: {path}")
            samples.append((image, mask))
        if mode == "binary":
            mapping, self.class_names = {1: 1, 2: 0, 3: 1}, ["background", "pet"]
        else:
            mapping, self.class_names = {1: 1, 2: 0, 3: 2}, ["background", "pet", "border"]
        self.num_classes, self.ignore_index = len(self.class_names), None
        label_map = LabelMap(mapping, "1 (pet), 2 (background), 3 (border)")
        super().__init__(samples, label_map, transforms, skip_corrupt, max_pixels)


def _breeds(split_file: Path) -> Dict[str, int]:
    """Id -> 0-based breed index from a Pet list file (``Abyssinian_100 1 1 1``: id, class id, species, breed)."""
    out: Dict[str, int] = {}
    for line in split_file.read_text().splitlines():
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            out[parts[0]] = int(parts[1]) - 1 if len(parts) > 1 and parts[1].isdigit() else 0
    return out
