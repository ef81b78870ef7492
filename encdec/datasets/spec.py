"""Datasets named by a short spec, as the command line takes them: ``voc:PATH``, ``pet:PATH``, ``cifar10:PATH``,
``dogs:PATH``, ``folder:PATH`` (your own images and masks), ``shapes`` or ``shapes:N``.

``from_spec`` builds the dataset of a spec for a split with the matching preset (training augmentation for
``"train"``, the evaluation preprocessing otherwise), and records on it what a model trained on it needs to
know: ``mean`` / ``std`` of the normalisation and the ``palette`` to draw its masks with.

Example:
    >>> from encdec.datasets import from_spec
    >>> train = from_spec("shapes:32", "train", size=32)
    >>> len(train), train.class_names, train.palette
    (32, ['background', 'circle', 'square'], 'shapes')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..image_files import MAX_PIXELS
from ..normalization import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from . import presets
from ._base import subset
from ._checks import stratified_split
from .cifar import CIFAR10
from .dogs import DogImages
from .folder import FOLDER_LAYOUT, SegmentationFolder
from .pets import OxfordPetSegmentation
from .synthetic import SyntheticShapes
from .voc import VOCSegmentation

__all__ = ["DATA_KINDS", "DataFolderError", "DataKind", "DataSpec", "DataSpecError", "from_spec", "parse_spec"]


class DataSpecError(ValueError):
    """A dataset spec that names no known kind, lacks its folder, or asks for a split the kind does not have.

    Example:
        >>> try:
        ...     parse_spec("imagenet:data")
        ... except DataSpecError as error:
        ...     print(str(error).split(";")[0])
        unknown kind 'imagenet'
    """


class DataFolderError(FileNotFoundError):
    """A dataset folder, or a file its layout needs, is missing; the message names the layout the kind expects.

    ``problem``, ``kind`` and ``layout`` are kept so that a caller can name its own option (the command line
    says ``--data voc:PATH expects ...``).

    Example:
        >>> try:
        ...     from_spec("voc:/no/such/VOC2012", "val")
        ... except DataFolderError as error:
        ...     print(error.problem, "|", error.kind, "|", error.layout[:22])
        dataset folder /no/such/VOC2012 does not exist | voc | the VOC2012 folder wit
    """

    def __init__(self, problem: str, kind: str, layout: str) -> None:
        super().__init__(f"{problem}; {kind}:PATH expects {layout}")
        self.problem, self.kind, self.layout = problem, kind, layout

    def __reduce__(self):  # pickles (worker processes) with its three parts
        return type(self), (self.problem, self.kind, self.layout)


@dataclass(frozen=True)
class DataKind:
    """One dataset kind: its task(s), the on-disk layout it expects, its splits, its default image side, how
    its images are brought to that side (``resize``: ``"stretch"`` to ``size x size`` whatever the aspect ratio,
    ``"shorter-side+center-crop"``, or ``"none"`` for data that comes at its size) and the palette its masks are
    drawn with (a name of ``encdec.viz.PALETTES``, or ``"classes"``: the dataset's own colours, its ``palette``).

    Example:
        >>> DATA_KINDS["voc"].splits
        ('train', 'val', 'trainval')
    """

    name: str
    tasks: Tuple[str, ...]
    layout: str
    splits: Tuple[str, ...]
    eval_split: str
    palette: str
    resize: str = "stretch"

    def default_size(self, task: str, reference: int) -> int:
        """The image side used when none is asked for: the data's natural size, or the model's reference.

        Example:
            >>> DATA_KINDS["cifar10"].default_size("classification", 224)
            32
        """
        if self.name == "cifar10":
            return 32
        if self.name == "shapes":
            return 64 if task == "segmentation" else 32
        if self.name == "dogs":
            return reference
        return 256


DATA_KINDS: Dict[str, DataKind] = {
    "voc": DataKind("voc", ("segmentation",),
                    "the VOC2012 folder with JPEGImages/*.jpg, SegmentationClass/*.png and "
                    "ImageSets/Segmentation/{train,val}.txt (or its VOCdevkit parent)",
                    ("train", "val", "trainval"), "val", "voc"),
    "pet": DataKind("pet", ("segmentation",),
                    "the Oxford-IIIT Pet folder with images/*.jpg, annotations/trimaps/*.png and "
                    "annotations/{trainval,test}.txt",
                    ("trainval", "test", "train", "val"), "val", "binary"),
    "cifar10": DataKind("cifar10", ("classification",),
                        "the cifar-10-batches-py folder (or its parent) with data_batch_1..5 and test_batch",
                        ("train", "val", "test"), "test", "voc", "none"),
    "dogs": DataKind("dogs", ("classification",),
                     "a folder with one sub-folder of images per class, e.g. Images/n02085620-Chihuahua/*.jpg",
                     ("train", "val", "all"), "val", "voc", "shorter-side+center-crop"),
    "folder": DataKind("folder", ("segmentation",), FOLDER_LAYOUT, ("train", "val", "all"), "val", "classes"),
    "shapes": DataKind("shapes", ("segmentation", "classification"),
                       "nothing: synthetic shapes drawn on the fly; shapes:N sets the number of training images",
                       ("val",), "val", "shapes"),
}
#: Share of each class of the CIFAR-10 training batches held out as its validation split.
CIFAR10_VAL_FRACTION = 0.1

_ALIASES = {"folders": "folder", "pets": "pet", "oxford-pet": "pet", "cifar": "cifar10", "cifar-10": "cifar10",
            "dog": "dogs", "synthetic": "shapes"}


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``KIND[:PATH]`` dataset spec.

    Attributes:
        kind: ``voc``, ``pet``, ``cifar10``, ``dogs``, ``folder`` or ``shapes``.
        path: The dataset folder (``None`` for shapes).
        count: For shapes, the number of training images.

    Example:
        >>> parse_spec("shapes:64")
        DataSpec(kind='shapes', path=None, count=64)
    """

    kind: str
    path: Optional[Path] = None
    count: int = 512

    @property
    def info(self) -> DataKind:
        """The ``DataKind`` of this spec."""
        return DATA_KINDS[self.kind]


def parse_spec(text: str) -> DataSpec:
    """Parse ``KIND:PATH`` (``shapes`` and ``shapes:N`` need no path).

    Raises:
        DataSpecError: Unknown kind, missing path, or a malformed shapes count.

    Example:
        >>> parse_spec("voc:data/VOC2012")
        DataSpec(kind='voc', path=PosixPath('data/VOC2012'), count=512)
        >>> parse_spec("shapes:64").count
        64
    """
    kind, sep, rest = text.partition(":")
    kind = _ALIASES.get(kind.lower(), kind.lower())
    if kind not in DATA_KINDS:
        raise DataSpecError(f"unknown kind {kind!r}; use one of "
                            + ", ".join(f"{k}:PATH" if k != "shapes" else "shapes" for k in DATA_KINDS))
    if kind == "shapes":
        if not rest:
            return DataSpec("shapes")
        if not rest.isdigit() or int(rest) < 1:
            raise DataSpecError(f"{text!r}: shapes takes a positive image count, e.g. shapes:256")
        return DataSpec("shapes", None, int(rest))
    if not sep or not rest:
        raise DataSpecError(f"{text!r}: give the folder, e.g. {kind}:PATH where PATH is {DATA_KINDS[kind].layout}")
    return DataSpec(kind, Path(rest).expanduser())


def from_spec(
    spec: Union[str, DataSpec],
    split: str = "train",
    *,
    size: int = 256,
    task: Optional[str] = None,
    num_classes: Optional[int] = None,
    normalize: bool = False,
    augment: bool = True,
    skip_corrupt: bool = False,
    max_pixels: Optional[int] = MAX_PIXELS,
) -> Any:
    """The dataset a spec names, for one split, with the matching preset.

    ``split="train"`` gets the training preset (with augmentation); every other split the evaluation
    preprocessing. The returned dataset carries ``num_classes``, ``class_names``, ``ignore_index`` and, added
    here, ``mean`` / ``std`` (the normalisation of its images) and ``palette`` (a name for
    ``encdec.viz.get_palette``).

    Args:
        spec: ``"voc:PATH"``, ``"pet:PATH"``, ``"cifar10:PATH"``, ``"dogs:PATH"``, ``"folder:PATH"``,
            ``"shapes[:N]"`` or a ``DataSpec``.
        split: ``"train"`` or a split of the kind (``DATA_KINDS[kind].splits``). Validation splits never touch a
            test set: Pet's and the dog folders' ``"val"`` are seeded splits of their training data, and CIFAR-10's
            ``"val"`` holds out 10% of each class of the training batches (its ``"train"`` is the other 90%);
            a folder's ``"val"`` is its ``val/`` folder, else a seeded 20% of its pairs.
        size: Image side for the kinds that resize (VOC, Pet, dogs, folder, shapes).
        task: ``"segmentation"`` or ``"classification"`` for ``shapes``, which serves both; checked against the
            kind for the others.
        num_classes: VOC: 22 maps the boundary to class 21 (the reference), anything else ignores it (255).
            Shapes: the number of classes (default 3). A folder's classes are its own (``classes.json``,
            ``classes.txt`` or the masks'): this argument is not used.
        normalize: Pet: ImageNet normalisation (for pretrained encoders); the reference feeds ``[0, 1]`` images.
        augment: Training splits: random crops and flips beyond the reports' own preprocessing; ``False`` gives
            exactly the reports' (VOC: resize only; Pet: resize and random flips; CIFAR-10: its random crop and
            flip, which the report applies; dogs: the evaluation resize and centre crop, nothing random).
        skip_corrupt: VOC, Pet, dogs and folder: substitute the next readable sample for an unreadable file instead of
            raising (see ``encdec.datasets.check.check_dataset`` to find and leave them out beforehand).
        max_pixels: VOC, Pet and dogs: largest ``width * height`` of an image or mask read; larger files are
            refused before decoding with ``encdec.image_files.ImageTooLargeError`` (``None``: no limit).

    Raises:
        DataFolderError: The folder, or a file its layout needs, is missing (the message names the layout); a
            ``FileNotFoundError``.
        DataSpecError: Malformed spec, unknown split, or a task the kind does not serve.

    Example:
        >>> val = from_spec("shapes:32", "val", size=32, task="classification")
        >>> val.num_classes, len(val)
        (3, 16)
    """
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    kind = spec.info
    if spec.path is not None and not (spec.path.is_dir() or (spec.kind == "folder" and spec.path.is_file())):
        raise DataFolderError(f"dataset folder {spec.path} does not exist", spec.kind, kind.layout)
    task = task or kind.tasks[0]
    if task not in kind.tasks:
        other = [k for k, d in DATA_KINDS.items() if task in d.tasks]
        raise DataSpecError(f"{spec.kind} is a {kind.tasks[0]} dataset, not a {task} one; use "
                            f"{' or '.join(other)}")
    if split != "train" and split not in kind.splits:
        raise DataSpecError(f"split {split!r} is not a split of {spec.kind}; choose from {', '.join(kind.splits)}")
    train = split == "train"
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    try:
        if spec.kind == "shapes":
            dataset: Any = SyntheticShapes(n=spec.count if train else max(16, spec.count // 4), size=size,
                                           num_classes=num_classes or 3, task=task, seed=0 if train else 1000)
            mean, std = SyntheticShapes.mean, SyntheticShapes.std
        elif spec.kind == "voc":
            preset = presets.voc_train(size, augment) if train else presets.voc_eval(size)
            dataset = VOCSegmentation(spec.path, split, preset, boundary="class" if num_classes == 22 else "ignore",
                                      skip_corrupt=skip_corrupt, max_pixels=max_pixels)
        elif spec.kind == "pet":
            preset = presets.pets_train(size, normalize, augment) if train else presets.pets_eval(size, normalize)
            # "val": held out of trainval
            dataset = OxfordPetSegmentation(spec.path, split, transforms=preset, skip_corrupt=skip_corrupt,
                                            max_pixels=max_pixels)
            if not normalize:  # the reference feeds [0, 1] images
                mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        elif spec.kind == "cifar10":
            transform = presets.cifar_train() if train else presets.cifar_eval()
            dataset = CIFAR10(spec.path, train=split != "test", transform=transform)
            if split != "test":  # a validation split held out of the training batches, never the test batch
                kept, held_out = stratified_split(dataset.targets, CIFAR10_VAL_FRACTION, seed=0)
                dataset = subset(dataset, kept if train else held_out)
            mean, std = CIFAR10_MEAN, CIFAR10_STD
        elif spec.kind == "folder":
            preset = presets.segmentation_train(size) if train and augment else presets.segmentation_eval(size)
            dataset = SegmentationFolder(spec.path, split, preset, skip_corrupt=skip_corrupt)
        else:
            preset = presets.dogs_train(size) if train and augment else presets.dogs_eval(size)
            dataset = DogImages(spec.path, split, preset, skip_corrupt=skip_corrupt, max_pixels=max_pixels)
    except FileNotFoundError as error:
        raise DataFolderError(str(error), spec.kind, kind.layout) from None
    dataset.mean, dataset.std = tuple(mean), tuple(std)
    if spec.kind != "folder":  # a folder's palette is its classes' colours
        dataset.palette = "voc22" if spec.kind == "voc" and num_classes == 22 else kind.palette
    return dataset
