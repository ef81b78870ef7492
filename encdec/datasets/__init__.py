"""Datasets for the on-disk layouts users already have, plus an embedded synthetic dataset.

* ``VOCSegmentation``, ``OxfordPetSegmentation``: ``(image, mask)`` pairs from the official layouts.
* ``SegmentationFolder``: ``(image, mask)`` pairs of your own, from ``images/`` + ``masks/`` folders or a list file,
  with the classes of ``classes.json`` / ``classes.txt`` or of the masks.
* ``CIFAR10``, ``DogImages``: ``(image, label)`` pairs.
* ``SyntheticShapes``: procedurally drawn shapes, no files; the default dataset of the demo and tests.
* ``presets``: the reference transform pipelines; ``apply_paired`` for your own.

Every dataset exposes ``num_classes``, ``ignore_index`` and ``class_names``. Masks are checked as they are
read: a value that is neither a class nor the ignore label raises ``LabelError`` naming the file, before
anything reaches a loss; an unreadable image raises ``CorruptImageError`` naming the file (or is skipped
and counted with ``skip_corrupt=True``). Images and masks are read upright by their EXIF orientation, and a file
of more than ``max_pixels`` pixels raises ``encdec.image_files.ImageTooLargeError`` before it is decoded (see
``encdec.image_files``).

Example:
    >>> from encdec.datasets import SyntheticShapes
    >>> image, mask = SyntheticShapes(n=4, size=32)[0]
    >>> tuple(image.shape), tuple(mask.shape)
    ((3, 32, 32), (32, 32))
"""

from . import presets, transforms
from ._base import take
from ._checks import CorruptImageError, LabelError, check_mask_labels, read_mask, read_rgb, stratified_split
from ._classes import CLASSES_FILES, FolderClasses, discover_classes, read_classes
from .cifar import CIFAR10, CIFAR10_CLASSES
from .dogs import DogImages, clean_class_name
from .folder import FOLDER_LAYOUT, FolderError, FolderPairs, SegmentationFolder, find_pairs
from .pets import OxfordPetSegmentation
from .spec import DATA_KINDS, DataFolderError, DataKind, DataSpec, DataSpecError, from_spec, parse_spec
from .synthetic import SHAPE_KINDS, SyntheticShapes
from .transforms import apply_paired, denormalize
from .voc import VOC_CLASSES, VOCSegmentation

__all__ = [
    "CIFAR10",
    "CIFAR10_CLASSES",
    "CLASSES_FILES",
    "DATA_KINDS",
    "DataFolderError",
    "DataKind",
    "DataSpec",
    "DataSpecError",
    "SHAPE_KINDS",
    "VOC_CLASSES",
    "CorruptImageError",
    "DogImages",
    "FOLDER_LAYOUT",
    "FolderClasses",
    "FolderError",
    "FolderPairs",
    "LabelError",
    "OxfordPetSegmentation",
    "SegmentationFolder",
    "SyntheticShapes",
    "VOCSegmentation",
    "apply_paired",
    "check_mask_labels",
    "clean_class_name",
    "denormalize",
    "discover_classes",
    "find_pairs",
    "from_spec",
    "parse_spec",
    "presets",
    "read_classes",
    "read_mask",
    "read_rgb",
    "stratified_split",
    "take",
    "transforms",
]
