"""Optimizers, learning-rate schedules and losses by name, as the command line and the recipes choose them.

Example:
    >>> import torch
    >>> from encdec.training.factories import make_optimizer, make_scheduler
    >>> params = [torch.nn.Parameter(torch.zeros(2))]
    >>> opt = make_optimizer("adamw", params, lr=1e-3, weight_decay=1e-4)
    >>> type(make_scheduler("cosine", opt, epochs=10, steps_per_epoch=5)).__name__
    'CosineAnnealingLR'
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import torch
from torch import nn

from ..losses import (
    MODES,
    BCEDiceLoss,
    DiceCELoss,
    DiceLoss,
    FocalLoss,
    JaccardLoss,
    LovaszLoss,
    SoftBCEWithLogitsLoss,
    TverskyLoss,
)

__all__ = ["LOSSES", "OPTIMIZERS", "SCHEDULERS", "make_loss", "make_optimizer", "make_scheduler"]

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("none", "step", "multistep", "plateau", "cosine", "onecycle")
#: The losses by name: cross-entropy, soft Dice, both, soft Jaccard (IoU), focal, Lovasz, Tversky, binary
#: cross-entropy and BCE + Dice (see ``encdec.losses``).
LOSSES = ("ce", "dice", "dice_ce", "jaccard", "focal", "lovasz", "tversky", "bce", "bce_dice")
_BY_NAME = {"dice": DiceLoss, "jaccard": JaccardLoss, "focal": FocalLoss, "lovasz": LovaszLoss,
            "tversky": TverskyLoss, "bce": SoftBCEWithLogitsLoss, "bce_dice": BCEDiceLoss}


def make_optimizer(
    name: str, params: Iterable[nn.Parameter], *, lr: float, weight_decay: float = 0.0, momentum: float = 0.9
) -> torch.optim.Optimizer:
    """``"adamw"``, ``"adam"`` or ``"sgd"`` (with ``momentum``) over ``params``.

    Raises:
        ValueError: An unknown name.

    Example:
        >>> make_optimizer("sgd", [torch.nn.Parameter(torch.zeros(1))], lr=0.1).defaults["momentum"]
        0.9
    """
    params = list(params)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer {name!r} is not one of {', '.join(OPTIMIZERS)}")


def make_scheduler(
    name: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int, **args: Any
) -> Optional[Any]:
    """A learning-rate schedule by name: ``"none"``, ``"step"`` (``step_size``, ``gamma``), ``"multistep"``
    (``milestones``, ``gamma``), ``"plateau"`` (``patience``, ``factor``, ``mode``), ``"cosine"`` (over ``epochs``)
    or ``"onecycle"`` (over every optimizer step, peaking at the optimizer's learning rate).

    Raises:
        ValueError: An unknown name.

    Example:
        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> make_scheduler("none", opt, epochs=3, steps_per_epoch=2) is None
        True
        >>> type(make_scheduler("multistep", opt, epochs=5, steps_per_epoch=3, milestones=[2, 4])).__name__
        'MultiStepLR'
    """
    schedules = torch.optim.lr_scheduler
    if name == "none":
        return None
    if name == "step":
        return schedules.StepLR(optimizer, step_size=int(args.get("step_size", 1)),
                                gamma=float(args.get("gamma", 0.1)))
    if name == "multistep":
        return schedules.MultiStepLR(optimizer, milestones=[int(m) for m in args.get("milestones", [])],
                                     gamma=float(args.get("gamma", 0.1)))
    if name == "plateau":
        return schedules.ReduceLROnPlateau(optimizer, mode=args.get("mode", "min"),
                                           factor=float(args.get("factor", 0.1)), patience=int(args.get("patience", 2)))
    if name == "cosine":
        return schedules.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        peak = optimizer.param_groups[0]["lr"]
        return schedules.OneCycleLR(optimizer, max_lr=peak, total_steps=epochs * steps_per_epoch)
    raise ValueError(f"scheduler {name!r} is not one of {', '.join(SCHEDULERS)}")


def make_loss(name: str, *, ignore_index: Optional[int] = None, mode: str = "multiclass") -> Optional[nn.Module]:
    """A loss of ``LOSSES`` by name, for targets of ``mode`` (``"binary"``, ``"multiclass"`` or
    ``"multilabel"``), ignoring ``ignore_index``, with the loss's own defaults.

    ``"ce"`` is ``None`` (``encdec.fit``'s default cross-entropy, which ignores the dataset's ignore label) and
    ``"dice_ce"`` its sum with Dice, both multiclass; ``"bce"`` and ``"bce_dice"`` score each class against the rest
    in multiclass mode.

    Raises:
        ValueError: An unknown name or mode, or a multiclass-only loss for another mode.

    Example:
        >>> type(make_loss("dice_ce", ignore_index=255)).__name__
        'DiceCELoss'
        >>> make_loss("lovasz", mode="binary")
        LovaszLoss(mode='binary', ignore_index=None)
    """
    if name not in LOSSES:
        raise ValueError(f"loss {name!r} is not one of {', '.join(LOSSES)}")
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if name in ("ce", "dice_ce") and mode != "multiclass":
        other = "bce" if name == "ce" else "bce_dice"
        raise ValueError(f"loss {name!r} is for multiclass targets; for {mode} targets use {other!r}")
    if name == "ce":
        return None
    if name == "dice_ce":
        return DiceCELoss(ignore_index=ignore_index)
    return _BY_NAME[name](mode, ignore_index=ignore_index)
