"""Recipes: each course report's training and evaluation workflow as data, and an improved recipe per task.

A :class:`Recipe` holds what a report fixed: the model, the data and its preprocessing (the reference presets,
which resize through Pillow as the course code did), the optimizer, the learning-rate schedule (including when
it steps), the batch size, the epochs, the loss and the monitored metric. ``encdec train --recipe NAME`` runs
one; explicit command-line flags override its fields. The course recipes keep the reports' defects on purpose,
so their numbers can be reproduced, and say so in :attr:`Recipe.defects`; the ``*_improved`` recipes fix them.

Example:
    >>> from encdec.training import recipes
    >>> r = recipes.get("voc_unet_course")
    >>> r.optimizer, r.lr, r.batch_size, r.epochs, r.scheduler, r.scheduler_interval
    ('adam', 0.005, 16, 3, 'step', 'step')
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["Recipe", "RECIPES", "get", "names"]


@dataclass(frozen=True)
class Recipe:
    """One training workflow, field by field.

    Attributes:
        name: The recipe's name.
        report: Which course report it follows (``"seed 000/004"``, ...), or ``"encdec"`` for an improved one.
        model: Registered model name.
        data: Dataset kind (``voc``, ``pet``, ``cifar10``, ``dogs``).
        num_classes: Model outputs (VOC: 22 maps the boundary to class 21, as the reports do).
        size: Image side.
        augment: Training augmentation beyond the report's own (``False``: the reference preprocessing only).
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: Learning rate.
        weight_decay: Weight decay.
        batch_size: Images per optimizer step.
        epochs: Epochs.
        scheduler: ``"none"``, ``"step"``, ``"multistep"``, ``"plateau"``, ``"cosine"`` or ``"onecycle"``.
        scheduler_args: Its arguments (``step_size``, ``gamma``, ``milestones``, ``patience``).
        scheduler_interval: ``"epoch"`` or ``"step"`` (after every batch, as seed 000 does with StepLR).
        loss: ``"ce"``, ``"dice"`` or ``"dice_ce"``.
        ignore_index: Label the loss skips (seed 000's ``CrossEntropyLoss(ignore_index=21)``), or ``None``.
        monitor: The History key that picks the best epoch.
        eval_split: The split the recipe's final numbers are scored on.
        defects: What the report did wrong that the recipe keeps, said plainly.
        notes: Where the facts come from.

    Example:
        >>> r = get("pet_unet_course")
        >>> r.model, r.data, r.monitor, r.eval_split
        ('unet_pet', 'pet', 'val_dice', 'test')
    """

    name: str
    report: str
    model: str
    data: str
    num_classes: Optional[int]
    size: int
    augment: bool
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    scheduler: str = "none"
    scheduler_args: Dict[str, Any] = field(default_factory=dict)
    scheduler_interval: str = "epoch"
    loss: str = "ce"
    ignore_index: Optional[int] = None
    monitor: str = "val_loss"
    eval_split: str = "val"
    defects: Tuple[str, ...] = ()
    notes: str = ""

    def with_overrides(self, **changes: Any) -> Recipe:
        """A copy with the given fields replaced (``None`` values are ignored).

        Example:
            >>> get("pet_unet_course").with_overrides(epochs=2, lr=None).epochs
            2
        """
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def warn_defects(self) -> None:
        """Warn once per defect the recipe reproduces on purpose.

        Example:
            >>> import warnings
            >>> with warnings.catch_warnings(record=True) as caught:
            ...     warnings.simplefilter("always")
            ...     get("voc_unet_course").warn_defects()
            >>> len(caught) >= 1
            True
        """
        for defect in self.defects:
            warnings.warn(f"recipe {self.name} reproduces a defect of {self.report}: {defect}", UserWarning,
                          stacklevel=2)


_STEPLR_PER_BATCH = ("StepLR(step_size=1, gamma=0.1) is stepped after every batch, so the learning rate falls "
                     "tenfold per batch, to about 5e-7 after 4 batches: the model barely trains after the first "
                     "steps (use voc_unet_improved)")
_VOC_ACCURACY = ("the report's pixel accuracy counts the boundary pixels and averages per image, then per batch "
                 "(encdec eval --convention course reproduces it; the correct numbers leave the boundary out)")

_VOC_COURSE = dict(report="seed 000/004", data="voc", num_classes=22, size=256, augment=False, optimizer="adam",
                   lr=0.005, weight_decay=0.0, batch_size=16, epochs=3, scheduler="step",
                   scheduler_args={"step_size": 1, "gamma": 0.1}, scheduler_interval="step", loss="ce",
                   ignore_index=21, monitor="val_loss", eval_split="val",
                   defects=(_STEPLR_PER_BATCH, _VOC_ACCURACY),
                   notes="batch_size 16, learning_rate 0.005, epochs 3, Adam, CrossEntropyLoss(ignore_index=21), "
                         "StepLR(step_size=1, gamma=0.1) with scheduler.step() inside the batch loop; images "
                         "and masks resized to 256 with PIL NEAREST")
_PET_COURSE = dict(report="seed 003", data="pet", num_classes=2, size=256, augment=False, optimizer="adam",
                   lr=1.2e-4, weight_decay=0.0, batch_size=16, epochs=10, loss="ce", monitor="val_dice",
                   eval_split="test",
                   defects=("the report's Dice divides the intersection by the total pixel count, not by "
                            "|A| + |B| (encdec eval --convention course reproduces it)",),
                   notes="--epochs 10, --batch_size 16, --learning_rate 0.00012, Adam, CrossEntropyLoss, best "
                         "model by validation Dice; images resized to 256 (PIL bilinear), values in [0, 1]")
_CIFAR_COURSE = dict(report="seed 002", data="cifar10", num_classes=10, size=32, augment=False, optimizer="adam",
                     lr=1e-3, weight_decay=0.0, batch_size=100, epochs=1, scheduler="step",
                     scheduler_args={"step_size": 1, "gamma": 1 / 3}, loss="ce", monitor="val_accuracy",
                     eval_split="test",
                     notes="num_epochs 1 (the report trained 1 epoch on CPU; its checkpoints are named after "
                           "epochs 250 and 285), learning_rate 0.001, Adam, batch 100, learning rate divided by 3 "
                           "every epoch; RandomCrop(32, padding=4) + RandomHorizontalFlip, CIFAR-10 normalisation")
_DOGS_COURSE = dict(report="seed 001", data="dogs", num_classes=None, size=32, augment=False, optimizer="adam",
                    lr=1e-3, weight_decay=0.0, batch_size=16, epochs=20, loss="ce", monitor="val_accuracy",
                    eval_split="val",
                    defects=("the report trained and tested on the same folder, and its accuracy is a constant "
                             "28/29 and 6/7 across epochs and models (a bug signature); this recipe validates on "
                             "a held-out split instead",),
                    notes="20 epochs; the optimizer and learning rate are not stated in the report (Adam 1e-3 "
                          "here)")

#: Every recipe by name.
RECIPES: Dict[str, Recipe] = {r.name: r for r in [
    Recipe("voc_unet_course", model="unet", **_VOC_COURSE),
    Recipe("voc_resnet50_unet_course", model="resnet50_unet", **_VOC_COURSE),
    Recipe("voc_unet_improved", report="encdec", model="unet", data="voc", num_classes=21, size=256, augment=True,
           optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=16, epochs=30, scheduler="cosine",
           loss="ce", ignore_index=255, monitor="val_miou", eval_split="val",
           notes="the boundary ignored (255) instead of a 22nd class, a per-epoch cosine schedule, augmentation, "
                 "the best epoch by validation mIoU"),
    Recipe("pet_unet_course", model="unet_pet", **_PET_COURSE),
    Recipe("pet_resnet34_unet_course", model="resnet34_unet", **_PET_COURSE),
    Recipe("pet_improved", report="encdec", model="resnet34_unet", data="pet", num_classes=2, size=256,
           augment=True, optimizer="adamw", lr=3e-4, weight_decay=1e-4, batch_size=16, epochs=20,
           scheduler="cosine", loss="dice_ce", monitor="val_dice", eval_split="test",
           notes="Dice + cross-entropy, augmentation, a cosine schedule; Dice as 2|A and B| / (|A| + |B|)"),
    Recipe("cifar_vgg16_course", model="vgg16_cifar", **_CIFAR_COURSE),
    Recipe("cifar_resnet50_course", model="resnet50_cifar", **_CIFAR_COURSE),
    Recipe("cifar_improved", report="encdec", model="vgg16_cifar", data="cifar10", num_classes=10, size=32,
           augment=True, optimizer="sgd", lr=0.05, weight_decay=5e-4, batch_size=128, epochs=60, scheduler="cosine",
           loss="ce", monitor="val_accuracy", eval_split="test",
           notes="SGD with momentum and weight decay, a cosine schedule, validation held out of the training "
                 "batches"),
    Recipe("dogs_cnn_course", model="custom_cnn", **_DOGS_COURSE),
    Recipe("dogs_improved", report="encdec", model="resnet18_classifier", data="dogs", num_classes=None, size=224,
           augment=True, optimizer="adamw", lr=3e-4, weight_decay=1e-4, batch_size=32, epochs=20,
           scheduler="cosine", loss="ce", monitor="val_accuracy", eval_split="val",
           notes="an ImageNet-initialised ResNet-18 (pass --encoder-weights), augmentation, a held-out split"),
]}


def names() -> List[str]:
    """The recipe names, sorted.

    Example:
        >>> "pet_unet_course" in names()
        True
    """
    return sorted(RECIPES)


def get(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ValueError: An unknown name; the message lists close matches and every recipe.

    Example:
        >>> get("cifar_vgg16_course").batch_size
        100
    """
    try:
        return RECIPES[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Available: {', '.join(names())}.") from None
