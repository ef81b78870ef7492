"""The overlap losses: soft Dice, soft Jaccard (IoU) and Tversky, one per class from the probabilities and the
dense targets, and Dice plus cross-entropy."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ._core import ModeLoss, check_mode, class_probs, prepare_targets, zero_loss

__all__ = ["DiceCELoss", "DiceLoss", "JaccardLoss", "TverskyLoss", "dice_ce", "dice_loss", "jaccard_loss",
           "tversky_loss"]

#: How a class without target pixels (in the batch, or in the image with per-image scores) counts in the mean.
EMPTY = ("score", "zero", "drop")


def _overlap(
    logits: torch.Tensor, target: torch.Tensor, *, mode: str, alpha: float, beta: float, scale: float,
    ignore_index: Optional[int], smooth: float, eps: float, from_logits: bool, include_background: bool,
    per_image: bool, log_loss: bool, empty: str, gamma: float = 1.0, validate: bool = True,
) -> torch.Tensor:
    """``1 - (s*TP + smooth) / (s*TP + s*alpha*FP + s*beta*FN + smooth)`` per class (``s`` = ``scale``), averaged."""
    check_mode(mode)
    if empty not in EMPTY:
        raise ValueError(f"empty={empty!r} is not one of {', '.join(map(repr, EMPTY))}")
    if not include_background and mode != "multiclass":
        raise ValueError(f"include_background=False is for multiclass mode; in {mode} mode every channel is a "
                         "foreground label")
    t = prepare_targets(logits, target, mode, ignore_index, validate)
    probs = class_probs(logits, mode, from_logits) * t.valid
    dims = (2,) if per_image else (0, 2)
    tp = (probs * t.dense).sum(dims)
    fp = probs.sum(dims) - tp
    truth = t.dense.sum(dims)
    fn = truth - tp
    score = (scale * tp + smooth) / (scale * (tp + alpha * fp + beta * fn) + smooth).clamp_min(eps)
    loss = -torch.log(score.clamp_min(eps)) if log_loss else 1.0 - score
    present = truth > 0
    if not include_background:
        loss, present = loss[..., 1:], present[..., 1:]
    if empty == "zero":
        loss = (loss * present).mean()
    elif empty == "drop":
        loss = (loss * present).sum() / present.sum().clamp_min(1) if bool(present.any()) else zero_loss(logits)
    else:
        loss = loss.mean()
    return loss if gamma == 1.0 else loss**gamma


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: Optional[int] = None,
    smooth: float = 1.0,
    include_background: bool = True,
    batch_dice: bool = True,
    validate: bool = True,
    *,
    mode: str = "multiclass",
    from_logits: bool = True,
    eps: float = 1e-7,
    log_loss: bool = False,
    empty: str = "score",
) -> torch.Tensor:
    """Soft Dice loss: ``1 - mean_c (2 * TP_c + smooth) / (sum(p_c) + sum(y_c) + smooth)``.

    ``TP_c = sum(p_c * y_c)`` over the batch (or each image), with ``p`` the probabilities and ``y`` the 0/1
    targets of class (or label) ``c``; pixels whose target is ``ignore_index`` are left out of every sum.

    Differences from smp's ``DiceLoss`` (the same numbers with the arguments in brackets): smp adds its ``smooth``
    to ``TP + (FP + FN) / 2``, so smp's ``smooth=s`` is encdec's ``smooth=2 * s``; smp's defaults are
    ``smooth=0`` and a loss of 0 for classes without target pixels (``smooth=0.0, empty="zero"``). encdec's
    default ``smooth=1`` scores an absent class too, so predicting it is penalised.

    Args:
        logits: Scores ``(N, C, ...)``; in multiclass mode ``C == 1`` means binary logits (sigmoid, with the
            background ``1 - p`` as class 0).
        target: Integer labels ``(N, ...)`` (multiclass), 0/1 ``(N, ...)`` or ``(N, 1, ...)`` (binary), 0/1
            ``(N, C, ...)`` (multilabel).
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator; keeps classes absent from a batch finite.
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        batch_dice: One score per class over the whole batch (default), or one per image and class, averaged.
        validate: Raise on target values the mode does not allow.
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        from_logits: ``False`` when ``logits`` already hold probabilities.
        eps: Lower bound of the denominator (and of the score under ``log_loss``).
        log_loss: ``-log(dice)`` instead of ``1 - dice``.
        empty: A class without target pixels is ``"score"``-d like the others, counts as ``"zero"`` loss, or is
            ``"drop"``-ped from the mean.

    Returns:
        A scalar tensor (float32 for half-precision logits), in ``[0, 1]`` unless ``log_loss``.

    Raises:
        ValueError: An unknown mode, shapes that do not fit it, or target values outside it.
        TypeError: Float targets in multiclass mode.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> perfect = 20.0 * torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()
        >>> round(float(dice_loss(perfect, target, smooth=0.0)), 4)
        0.0
        >>> round(float(dice_loss(torch.full((1, 1, 2, 2), 20.0), target, mode="binary", smooth=0.0)), 4)
        0.1429
    """
    return _overlap(logits, target, mode=mode, alpha=0.5, beta=0.5, scale=2.0, ignore_index=ignore_index,
                    smooth=smooth, eps=eps, from_logits=from_logits, include_background=include_background,
                    per_image=not batch_dice, log_loss=log_loss, empty=empty, validate=validate)


def jaccard_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "multiclass",
    ignore_index: Optional[int] = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = True,
    include_background: bool = True,
    per_image: bool = False,
    log_loss: bool = False,
    empty: str = "score",
    validate: bool = True,
) -> torch.Tensor:
    """Soft Jaccard (IoU) loss: ``1 - mean_c (TP_c + smooth) / (TP_c + FP_c + FN_c + smooth)``.

    ``TP_c = sum(p_c * y_c)``, ``FP_c = sum(p_c) - TP_c``, ``FN_c = sum(y_c) - TP_c`` over the batch (or each
    image), without the pixels whose target is ``ignore_index``. smp's ``JaccardLoss`` is this loss with
    ``smooth=0.0, empty="zero"`` (smp's defaults); encdec's ``smooth=1`` also scores classes absent from the batch.

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator.
        eps: Lower bound of the denominator (and of the score under ``log_loss``).
        from_logits: ``False`` when ``logits`` already hold probabilities.
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        per_image: One score per image and class, averaged, instead of one per class over the batch.
        log_loss: ``-log(iou)`` instead of ``1 - iou``.
        empty: ``"score"``, ``"zero"`` or ``"drop"`` a class without target pixels (see ``dice_loss``).
        validate: Raise on target values the mode does not allow.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, shapes that do not fit it, or target values outside it.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
        >>> logits = torch.tensor([[[[-20.0, 20.0], [20.0, -20.0]]]])   # one of three foreground pixels missed
        >>> round(float(jaccard_loss(logits, target, mode="binary", smooth=0.0)), 4)
        0.3333
    """
    return _overlap(logits, target, mode=mode, alpha=1.0, beta=1.0, scale=1.0, ignore_index=ignore_index,
                    smooth=smooth, eps=eps, from_logits=from_logits, include_background=include_background,
                    per_image=per_image, log_loss=log_loss, empty=empty, validate=validate)


def tversky_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "multiclass",
    alpha: float = 0.3,
    beta: float = 0.7,
    gamma: float = 1.0,
    ignore_index: Optional[int] = None,
    smooth: float = 1.0,
    eps: float = 1e-7,
    from_logits: bool = True,
    include_background: bool = True,
    per_image: bool = False,
    log_loss: bool = False,
    empty: str = "score",
    validate: bool = True,
) -> torch.Tensor:
    """Tversky loss (Salehi et al. 2017): ``(1 - mean_c (TP_c + smooth) / (TP_c + alpha FP_c + beta FN_c + smooth))
    ** gamma``.

    ``alpha`` weighs false positives and ``beta`` false negatives: ``beta > alpha`` trades precision for recall,
    which helps small structures. ``alpha = beta = 0.5`` is Dice (with half the smoothing), ``alpha = beta = 1``
    Jaccard. The defaults are the paper's best pair (0.3, 0.7); smp's ``TverskyLoss`` defaults to 0.5/0.5 with
    ``smooth=0`` and a zero loss for classes without target pixels (``alpha=0.5, beta=0.5, smooth=0.0,
    empty="zero"`` give smp's numbers). ``gamma`` raises the averaged loss to a power, as smp does (Abraham and Khan's
    focal Tversky loss raises each class's term to ``1 / gamma`` instead).

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        alpha: Weight of the false positives.
        beta: Weight of the false negatives.
        gamma: Power of the averaged loss.
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator.
        eps: Lower bound of the denominator (and of the score under ``log_loss``).
        from_logits: ``False`` when ``logits`` already hold probabilities.
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        per_image: One score per image and class, averaged, instead of one per class over the batch.
        log_loss: ``-log(tversky)`` instead of ``1 - tversky``.
        empty: ``"score"``, ``"zero"`` or ``"drop"`` a class without target pixels (see ``dice_loss``).
        validate: Raise on target values the mode does not allow.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, shapes that do not fit it, or target values outside it.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0.0, 1.0], [1.0, 1.0]]])
        >>> missed = torch.tensor([[[[-20.0, 20.0], [20.0, -20.0]]]])    # a false negative costs more ...
        >>> extra = torch.tensor([[[[20.0, 20.0], [20.0, 20.0]]]])       # ... than a false positive
        >>> tversky_loss(missed, target, mode="binary", smooth=0.0) > tversky_loss(extra, target, mode="binary")
        tensor(True)
    """
    return _overlap(logits, target, mode=mode, alpha=alpha, beta=beta, scale=1.0, ignore_index=ignore_index,
                    smooth=smooth, eps=eps, from_logits=from_logits, include_background=include_background,
                    per_image=per_image, log_loss=log_loss, empty=empty, gamma=gamma, validate=validate)


def dice_ce(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: Optional[int] = None,
    dice_weight: float = 1.0,
    ce_weight: float = 1.0,
    smooth: float = 1.0,
    include_background: bool = True,
    class_weights: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """``ce_weight * cross-entropy + dice_weight * soft Dice loss`` (multiclass), both ignoring ``ignore_index``.

    For binary or multilabel targets use ``bce_dice_loss``.

    Args:
        logits: Scores ``(N, C, ...)``; ``C == 1`` uses binary cross-entropy with logits.
        target: Integer labels ``(N, ...)``.
        ignore_index: Target label whose pixels are left out of both terms.
        dice_weight: Weight of the Dice term.
        ce_weight: Weight of the cross-entropy term.
        smooth: Dice smoothing.
        include_background: Whether class 0 counts in the Dice mean.
        class_weights: Optional per-class weights of the cross-entropy (``C`` values).

    Returns:
        A scalar tensor.

    Example:
        >>> import torch
        >>> loss = dice_ce(torch.randn(2, 2, 4, 4, requires_grad=True), torch.randint(0, 2, (2, 4, 4)))
        >>> loss.backward()
    """
    dl = dice_loss(logits, target, ignore_index, smooth, include_background)
    target = target.reshape(logits.shape[0], *logits.shape[2:])
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    if not bool(valid.any()):
        ce = zero_loss(logits)  # every pixel ignored: cross_entropy would give NaN
    elif logits.shape[1] == 1:
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0].float(), (target == 1).float(), reduction="none")
        ce = (per_pixel * valid).sum() / valid.sum()
    else:
        ce = F.cross_entropy(logits.float(), target.long(), weight=class_weights,
                             ignore_index=-100 if ignore_index is None else ignore_index)
    return ce_weight * ce + dice_weight * dl


class DiceLoss(ModeLoss):
    """Soft Dice loss as a module (see ``dice_loss`` for the definition and the arguments).

    Args:
        mode: ``"binary"``, ``"multiclass"`` (default) or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator (smp's ``smooth=s`` is ``smooth=2 * s`` here).
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        batch_dice: One Dice per class over the whole batch (default) or per image.
        from_logits: ``False`` when the inputs are probabilities.
        eps: Lower bound of the denominator.
        log_loss: ``-log(dice)`` instead of ``1 - dice``.
        empty: ``"score"``, ``"zero"`` (smp) or ``"drop"`` a class without target pixels.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = DiceLoss(ignore_index=255)
        >>> loss = criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
        >>> binary = DiceLoss("binary")(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)).float())
    """

    def __init__(
        self,
        mode: str = "multiclass",
        *,
        ignore_index: Optional[int] = None,
        smooth: float = 1.0,
        include_background: bool = True,
        batch_dice: bool = True,
        from_logits: bool = True,
        eps: float = 1e-7,
        log_loss: bool = False,
        empty: str = "score",
    ) -> None:
        super().__init__(mode, ignore_index)
        self.smooth, self.include_background, self.batch_dice = smooth, include_background, batch_dice
        self.from_logits, self.eps, self.log_loss, self.empty = from_logits, eps, log_loss, empty

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return dice_loss(logits, target, self.ignore_index, self.smooth, self.include_background, self.batch_dice,
                         mode=self.mode, from_logits=self.from_logits, eps=self.eps, log_loss=self.log_loss,
                         empty=self.empty)


class JaccardLoss(ModeLoss):
    """Soft Jaccard (IoU) loss as a module (see ``jaccard_loss`` for the definition and the arguments).

    Args:
        mode: ``"binary"``, ``"multiclass"`` (default) or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator.
        eps: Lower bound of the denominator.
        from_logits: ``False`` when the inputs are probabilities.
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        per_image: One score per image and class instead of one per class over the batch.
        log_loss: ``-log(iou)`` instead of ``1 - iou``.
        empty: ``"score"``, ``"zero"`` (smp) or ``"drop"`` a class without target pixels.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = JaccardLoss("multilabel", ignore_index=255)
        >>> loss = criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 3, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "multiclass",
        *,
        ignore_index: Optional[int] = None,
        smooth: float = 1.0,
        eps: float = 1e-7,
        from_logits: bool = True,
        include_background: bool = True,
        per_image: bool = False,
        log_loss: bool = False,
        empty: str = "score",
    ) -> None:
        super().__init__(mode, ignore_index)
        self.smooth, self.eps, self.from_logits = smooth, eps, from_logits
        self.include_background, self.per_image = include_background, per_image
        self.log_loss, self.empty = log_loss, empty

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return jaccard_loss(logits, target, mode=self.mode, ignore_index=self.ignore_index, smooth=self.smooth,
                            eps=self.eps, from_logits=self.from_logits, include_background=self.include_background,
                            per_image=self.per_image, log_loss=self.log_loss, empty=self.empty)


class TverskyLoss(ModeLoss):
    """Tversky loss as a module (see ``tversky_loss`` for the definition and the arguments).

    Args:
        mode: ``"binary"``, ``"multiclass"`` (default) or ``"multilabel"``.
        alpha: Weight of the false positives (default 0.3; smp's 0.5).
        beta: Weight of the false negatives (default 0.7; smp's 0.5).
        gamma: Power of the averaged loss.
        ignore_index: Target value whose pixels are left out.
        smooth: Added to numerator and denominator.
        eps: Lower bound of the denominator.
        from_logits: ``False`` when the inputs are probabilities.
        include_background: Whether class 0 counts in the mean (multiclass mode only).
        per_image: One score per image and class instead of one per class over the batch.
        log_loss: ``-log(tversky)`` instead of ``1 - tversky``.
        empty: ``"score"``, ``"zero"`` (smp) or ``"drop"`` a class without target pixels.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = TverskyLoss("binary", alpha=0.3, beta=0.7)
        >>> loss = criterion(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 1, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "multiclass",
        *,
        alpha: float = 0.3,
        beta: float = 0.7,
        gamma: float = 1.0,
        ignore_index: Optional[int] = None,
        smooth: float = 1.0,
        eps: float = 1e-7,
        from_logits: bool = True,
        include_background: bool = True,
        per_image: bool = False,
        log_loss: bool = False,
        empty: str = "score",
    ) -> None:
        super().__init__(mode, ignore_index)
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        self.smooth, self.eps, self.from_logits = smooth, eps, from_logits
        self.include_background, self.per_image = include_background, per_image
        self.log_loss, self.empty = log_loss, empty

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return tversky_loss(logits, target, mode=self.mode, alpha=self.alpha, beta=self.beta, gamma=self.gamma,
                            ignore_index=self.ignore_index, smooth=self.smooth, eps=self.eps,
                            from_logits=self.from_logits, include_background=self.include_background,
                            per_image=self.per_image, log_loss=self.log_loss, empty=self.empty)


class DiceCELoss(nn.Module):
    """Cross-entropy plus soft Dice as a module (see ``dice_ce``); multiclass targets.

    Args:
        ignore_index: Target label whose pixels are left out of both terms.
        dice_weight: Weight of the Dice term.
        ce_weight: Weight of the cross-entropy term.
        smooth: Dice smoothing.
        include_background: Whether class 0 counts in the Dice mean.
        class_weights: Optional per-class cross-entropy weights.

    Example:
        >>> import torch
        >>> criterion = DiceCELoss(ignore_index=255)
        >>> loss = criterion(torch.randn(2, 2, 8, 8), torch.randint(0, 2, (2, 8, 8)))
    """

    def __init__(
        self,
        ignore_index: Optional[int] = None,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        smooth: float = 1.0,
        include_background: bool = True,
        class_weights: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.smooth = smooth
        self.include_background = include_background
        self.register_buffer("class_weights", class_weights if class_weights is None else class_weights.float())

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)``, integer ``target`` ``(N, ...)``; a scalar tensor."""
        return dice_ce(
            logits,
            target,
            self.ignore_index,
            self.dice_weight,
            self.ce_weight,
            self.smooth,
            self.include_background,
            self.class_weights,
        )
