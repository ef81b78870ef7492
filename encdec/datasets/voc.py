"""Pascal VOC 2012 semantic segmentation, read from the official folder layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from ..colors import BOUNDARY_COLOR, voc_palette
from ..image_files import MAX_PIXELS
from ._base import ImageMaskDataset, read_split_file, resolve_root
from ._checks import LabelMap

__all__ = ["VOC_CLASSES", "VOCSegmentation"]

#: The 21 VOC classes, index = label.
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


class VOCSegmentation(ImageMaskDataset):
    """Pascal VOC 2012 segmentation: ``JPEGImages/*.jpg`` with palette PNG masks in ``SegmentationClass/``.

    Items are ``(image, mask)``: without ``transforms`` a uint8 image ``(3, H, W)`` and an int64 mask
    ``(H, W)`` of palette indices (0-20 classes, 255 object boundaries). Masks are checked on read: any other
    value raises ``LabelError`` naming the file.

    Args:
        root: The ``VOC2012`` folder itself, a ``VOCdevkit`` folder, or a folder containing ``VOCdevkit``
            (torchvision's layout).
        split: Name of a file in ``ImageSets/Segmentation`` (``"train"``, ``"val"``, ``"trainval"``).
        transforms: Joint ``transforms(image, mask) -> (image, mask)``, e.g.
            ``encdec.datasets.presets.voc_train`` (the mask is passed as a ``tv_tensors.Mask``).
        boundary: ``"ignore"`` keeps 255 as the ignore label (21 classes, ``ignore_index=255``); ``"class"``
            maps it to class 21 (22 classes, ``ignore_index=21``) like the 22-output reference checkpoints,
            which were trained with ``CrossEntropyLoss(ignore_index=21)``.
        rgb_masks: ``"palette"`` reads masks saved as RGB colours (a common export) back to labels through the
            VOC colour map, the boundary colour included; a colour outside it is refused by name. ``"refuse"``
            accepts palette and grayscale masks only.
        skip_corrupt: Substitute the next readable sample for an unreadable file (recorded in ``skipped``)
            instead of raising ``CorruptImageError`` (or ``ImageTooLargeError``).
        max_pixels: Largest ``width * height`` of an image or mask read; a larger file is refused before it is
            decoded with ``encdec.image_files.ImageTooLargeError`` (default ``encdec.image_files.MAX_PIXELS``,
            Pillow's decompression-bomb threshold; ``None``: no limit). Images are read upright by their EXIF
            orientation.

    Attributes:
        num_classes: 21, or 22 with ``boundary="class"``.
        ignore_index: 255, or 21 with ``boundary="class"``.
        class_names: The VOC class names (plus ``"boundary"``).
        ids: Image ids of the split, in file order.

    Raises:
        FileNotFoundError: No VOC layout under ``root``, an unknown split, or a listed id without its image or
            mask (the message names the id and the split file).
        ValueError: An empty split file or an unknown ``boundary``.

    Example:
        >>> from encdec.datasets import VOCSegmentation, presets  # doctest: +SKIP
        >>> ds = VOCSegmentation("data/VOC2012", "train", transforms=presets.voc_train())  # doctest: +SKIP
        >>> image, mask = ds[0]  # doctest: +SKIP
    """

    def __init__(
        self,
        root: Any,
        split: str = "train",
        transforms: Optional[Callable[..., Any]] = None,
        boundary: str = "ignore",
        skip_corrupt: bool = False,
        rgb_masks: str = "palette",
        max_pixels: Optional[int] = MAX_PIXELS,
    ) -> None:
        if boundary not in ("ignore", "class"):
            raise ValueError(f"boundary must be 'ignore' (keep 255) or 'class' (map to 21), got {boundary!r}")
        if rgb_masks not in ("palette", "refuse"):
            raise ValueError(f"rgb_masks must be 'palette' or 'refuse', got {rgb_masks!r}")
        if rgb_masks == "palette":
            colours = voc_palette(21)
            self.mask_colours = {**{tuple(int(v) for v in colours[k]): k for k in range(21)}, BOUNDARY_COLOR: 255}
        self.root = resolve_root(
            root, ["", "VOC2012", "VOCdevkit/VOC2012"], "ImageSets/Segmentation", "Pascal VOC 2012 folder"
        )
        self.split = split
        self.boundary = boundary
        split_dir = self.root / "ImageSets" / "Segmentation"
        split_file = split_dir / f"{split}.txt"
        self.ids = read_split_file(split_file, [p.stem for p in split_dir.glob("*.txt")])
        samples = []
        for image_id in self.ids:
            image = self.root / "JPEGImages" / f"{image_id}.jpg"
            mask = self.root / "SegmentationClass" / f"{image_id}.png"
            for kind, path in (("image", image), ("mask", mask)):
                if not path.is_file():
                    raise FileNotFoundError(f"{kind} for id {image_id!r} listed in {split_file} not found: {path}")
            samples.append((image, mask))
        if boundary == "class":
            mapping = {**{k: k for k in range(21)}, 255: 21}
            self.num_classes, self.ignore_index = 22, 21
            self.class_names = [*VOC_CLASSES, "boundary"]
        else:
            mapping = {**{k: k for k in range(21)}, 255: 255}
            self.num_classes, self.ignore_index = 21, 255
            self.class_names = list(VOC_CLASSES)
        label_map = LabelMap(mapping, "[0, 21) and 255 (object boundary)")
        super().__init__(samples, label_map, transforms, skip_corrupt, max_pixels)

    @property
    def image_dir(self) -> Path:
        """The ``JPEGImages`` folder."""
        return self.root / "JPEGImages"
