"""Recipes: each course report's training and evaluation workflow as data, and an improved recipe per task.

A ``Recipe`` holds what a report fixed: the model, the data and its preprocessing (the reference presets,
which resize through Pillow as the course code did), the optimizer, the learning-rate schedule (including when
it steps), the batch size, the epochs, the loss, the monitored metric, the precision and the checkpoint it started
from. ``encdec train --recipe NAME`` runs one; explicit command-line flags override its fields. A field the report
does not state is encdec's choice and listed in ``Recipe.not_in_report``. The course recipes keep the reports'
defects on purpose, so their numbers can be reproduced, and say so in ``Recipe.defects``; the ``*_improved``
recipes fix them.

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
        report: Which course report it follows (``"the VOC U-Net report"``, ...), or ``"encdec"`` for an improved
            one.
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
        scheduler_interval: ``"epoch"`` or ``"step"`` (after every batch, as the VOC U-Net report does with StepLR).
        loss: ``"ce"``, ``"dice"`` or ``"dice_ce"``.
        ignore_index: Label the loss skips (the VOC U-Net report's ``CrossEntropyLoss(ignore_index=21)``), or ``None``.
        monitor: The History key that picks the best epoch.
        eval_split: The split the recipe's final numbers are scored on.
        defects: What the report did wrong that the recipe keeps, said plainly.
        notes: Where the facts come from.
        precision: ``"fp32"`` for the course recipes (the reports trained in float32), ``"auto"`` otherwise.
        weights: The course checkpoint the report started from (``encdec train --weights``), when it fine-tuned one.
        encoder_weights: The ImageNet file the report's encoder started from (``--encoder-weights``).
        not_in_report: The fields the report does not state: encdec's choice, not the report's.
        ran_in_report: ``False`` for a model the report defines but never trains.

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
    precision: str = "auto"
    weights: Optional[str] = None
    encoder_weights: Optional[str] = None
    not_in_report: Tuple[str, ...] = ()
    ran_in_report: bool = True

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

_VOC_U_NET_REPORT = "the VOC U-Net report"
_VOC_FINETUNE_REPORT = "the VOC fine-tuning report"
_PET_REPORT = "the Pet report"
_CIFAR_REPORT = "the CIFAR-10 report"
_DOGS_REPORT = "the dog-images report"

_VOC_COURSE = dict(report=_VOC_U_NET_REPORT, data="voc", num_classes=22, size=256, augment=False, optimizer="adam",
                   lr=0.005, weight_decay=0.0, batch_size=16, epochs=3, scheduler="step",
                   scheduler_args={"step_size": 1, "gamma": 0.1}, scheduler_interval="step", loss="ce",
                   ignore_index=21, monitor="val_loss", eval_split="val", precision="fp32",
                   defects=(_STEPLR_PER_BATCH, _VOC_ACCURACY), not_in_report=("monitor",),
                   notes="batch_size 16, learning_rate 0.005, epochs 3, Adam, CrossEntropyLoss(ignore_index=21), "
                         "StepLR(step_size=1, gamma=0.1) with scheduler.step() inside the batch loop; images "
                         "and masks resized to 256 with PIL NEAREST; from random weights (its runs used 50 images, "
                         "4 batches an epoch); the report keeps no best model (it saves the weights of epochs "
                         "divisible by 4, so only epoch 0's), so the monitor is encdec's")
# The fine-tuning report ran the same course skeleton for one epoch from the course checkpoint; it states the
# epoch, Adam and the loss, and takes the rest from the skeleton the VOC U-Net report prints.
_VOC_FINETUNE = dict(_VOC_COURSE, report=_VOC_FINETUNE_REPORT, epochs=1,
                     not_in_report=("lr", "batch_size", "scheduler", "scheduler_args", "scheduler_interval", "size",
                                    "monitor"),
                     notes="one epoch from the course checkpoint (\"Model was trained 1 epoch, because we use the "
                           "pre-trained model checkpoint\"), Adam, cross-entropy, on an A100; the learning rate, "
                           "batch, schedule and size are the course skeleton's, as the VOC U-Net report prints them")
_PET_COURSE = dict(report=_PET_REPORT, data="pet", num_classes=2, size=256, augment=False, optimizer="adam",
                   lr=1.2e-4, weight_decay=0.0, batch_size=16, epochs=10, loss="ce", monitor="val_dice",
                   eval_split="test", precision="fp32",
                   defects=("the report's Dice divides the intersection by the total pixel count, not by "
                            "|A| + |B| (encdec eval --convention course reproduces it)",),
                   notes="--epochs 10, --batch_size 16, --learning_rate 0.00012, Adam, CrossEntropyLoss, best "
                         "model by validation Dice; images resized to 256 (PIL bilinear), values in [0, 1]")
_CIFAR_COURSE = dict(report=_CIFAR_REPORT, data="cifar10", num_classes=10, size=32, augment=False, optimizer="adam",
                     lr=1e-3, weight_decay=0.0, batch_size=100, epochs=1, scheduler="step",
                     scheduler_args={"step_size": 1, "gamma": 1 / 3}, loss="ce", monitor="val_accuracy",
                     eval_split="test", precision="fp32", not_in_report=("monitor",),
                     notes="num_epochs 1 of fine-tuning the course checkpoint (the report trained 1 epoch on CPU "
                           "from the checkpoints named after epochs 250 and 285), learning_rate 0.001, Adam, batch "
                           "100, learning rate divided by 3 every epoch; RandomCrop(32, padding=4) + "
                           "RandomHorizontalFlip, CIFAR-10 normalisation; the report keeps no best model, so the "
                           "monitor (and the validation split held out of the training batches) is encdec's")
_DOGS_UNSTATED = ("optimizer", "lr", "weight_decay", "batch_size", "scheduler", "loss", "monitor", "eval_split",
                  "augment", "num_classes")
_DOGS_SPLIT = ("the command lines pass the same folder as --train_dir and --test_dir; the listing's TrainSet takes "
               "indices, but how (or whether) the report split the folder is not shown, so this recipe validates "
               "on a seeded held-out split of it")
_DOGS_COURSE = dict(report=_DOGS_REPORT, data="dogs", num_classes=None, augment=False, optimizer="adam", lr=1e-3,
                    weight_decay=0.0, batch_size=16, epochs=20, loss="ce", monitor="val_accuracy", eval_split="val",
                    precision="fp32", defects=(_DOGS_SPLIT,))

#: Every recipe by name.
RECIPES: Dict[str, Recipe] = {r.name: r for r in [
    Recipe("voc_unet_course", model="unet", **_VOC_COURSE),
    Recipe("voc_resnet50_unet_course", model="resnet50_unet", **_VOC_COURSE),
    Recipe("voc_unet_finetune_course", model="unet", weights="UNet_best_model.pth", **_VOC_FINETUNE),
    Recipe("voc_resnet50_unet_finetune_course", model="resnet50_unet", weights="UNet_resnet_course.pth",
           **_VOC_FINETUNE),
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
    Recipe("cifar_vgg16_course", model="vgg16_cifar", weights="vgg16_epoch250.ckpt", **_CIFAR_COURSE),
    Recipe("cifar_resnet50_course", model="resnet50_cifar", weights="resnet50_epoch285.ckpt", **_CIFAR_COURSE),
    Recipe("cifar_improved", report="encdec", model="vgg16_cifar", data="cifar10", num_classes=10, size=32,
           augment=True, optimizer="sgd", lr=0.05, weight_decay=5e-4, batch_size=128, epochs=60, scheduler="cosine",
           loss="ce", monitor="val_accuracy", eval_split="test",
           notes="SGD with momentum and weight decay, a cosine schedule, validation held out of the training "
                 "batches"),
    Recipe("dogs_resfcn18_course", model="resfcn18", size=192, not_in_report=_DOGS_UNSTATED, **_DOGS_COURSE,
           notes="what the report ran as `--arch resfcn18`: 20 epochs; images resized to 192x192 (the listing's "
                 "self.resize = 192) and flattened; the report does not print its optimizer, learning rate, "
                 "batch size or augmentation"),
    Recipe("dogs_resnet18_course", model="resnet18_classifier", size=224, encoder_weights="resnet18-f37072fd.pth",
           not_in_report=_DOGS_UNSTATED + ("size",), **_DOGS_COURSE,
           notes="what the report ran as `--arch resnet18`: torchvision's ResNet-18 from the ImageNet file "
                 "resnet18-f37072fd.pth with a new fc layer, 20 epochs; the listing's ResNet18(num_classes=4) "
                 "default cannot hold the data set's breeds, so the head has one output per class folder; the "
                 "report does not print its optimizer, learning rate, batch size or image size"),
    Recipe("dogs_cnn_course", model="custom_cnn", size=32, not_in_report=_DOGS_UNSTATED + ("epochs",),
           ran_in_report=False, **_DOGS_COURSE,
           notes="CustomCNN(num_cls=100, img_size=32) is defined in the report, but no printed command selects it "
                 "(its runs name --arch resfcn18 and --arch resnet18; one logged run gives no --arch, and train.py's "
                 "default is not printed); the epochs follow those runs"),
    Recipe("dogs_improved", report="encdec", model="resnet18_classifier", data="dogs", num_classes=None, size=224,
           augment=True, optimizer="adamw", lr=3e-4, weight_decay=1e-4, batch_size=32, epochs=20,
           scheduler="cosine", loss="ce", monitor="val_accuracy", eval_split="val",
           encoder_weights="resnet18-f37072fd.pth",
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
