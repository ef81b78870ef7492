"""Datasets for the on-disk layouts users already have, plus an embedded synthetic dataset.

* ``VOCSegmentation``, ``OxfordPetSegmentation``: ``(image, mask)`` pairs from the official layouts.
* ``CIFAR10``, ``DogImages``: ``(image, label)`` pairs.
* ``SyntheticShapes``: procedurally drawn shapes, no files; the default dataset of the demo and tests.
* ``presets``: the reference transform pipelines; ``apply_paired`` for your own.

Every dataset exposes ``num_classes``, ``ignore_index`` and ``class_names``. Masks are checked as they are
read: a value that is neither a class nor the ignore label raises ``LabelError`` naming the file, before
anything reaches a loss; an unreadable image raises ``CorruptImageError`` naming the file (or is skipped
and counted with ``skip_corrupt=True``).

Example:
    >>> from encdec.datasets import SyntheticShapes
    >>> image, mask = SyntheticShapes(n=4, size=32)[0]
    >>> tuple(image.shape), tuple(mask.shape)
    ((3, 32, 32), (32, 32))
"""

from . import presets, transforms
from ._base import take
from ._checks import CorruptImageError, LabelError, check_mask_labels, read_mask, read_rgb, stratified_split
from .cifar import CIFAR10, CIFAR10_CLASSES
from .dogs import DogImages, clean_class_name
from .pets import OxfordPetSegmentation
from .spec import DATA_KINDS, DataFolderError, DataKind, DataSpec, DataSpecError, from_spec, parse_spec
from .synthetic import SHAPE_KINDS, SyntheticShapes
from .transforms import apply_paired, denormalize
from .voc import VOC_CLASSES, VOCSegmentation

__all__ = [
    "CIFAR10",
    "CIFAR10_CLASSES",
    "DATA_KINDS",
    "DataFolderError",
    "DataKind",
    "DataSpec",
    "DataSpecError",
    "SHAPE_KINDS",
    "VOC_CLASSES",
    "CorruptImageError",
    "DogImages",
    "LabelError",
    "OxfordPetSegmentation",
    "SyntheticShapes",
    "VOCSegmentation",
    "apply_paired",
    "check_mask_labels",
    "clean_class_name",
    "denormalize",
    "from_spec",
    "parse_spec",
    "presets",
    "read_mask",
    "read_rgb",
    "stratified_split",
    "take",
    "transforms",
]
