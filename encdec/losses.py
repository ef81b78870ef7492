"""Soft Dice loss and its usual combination with cross-entropy, for Dice-scored segmentation.

The soft Dice of class ``c`` is ``(2 * sum(p_c * y_c) + smooth) / (sum(p_c) + sum(y_c) + smooth)``, with ``p``
the softmax probabilities (sigmoid for single-channel binary logits) and ``y`` the one-hot target; the loss is
``1 - mean_c dice_c``. Pixels whose target is ``ignore_index`` are left out of every sum.

Example:
    >>> import torch
    >>> from encdec.losses import DiceLoss, dice_ce
    >>> logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    >>> loss = DiceLoss(ignore_index=255)(logits, target)
    >>> 0.0 <= float(loss) <= 1.0
    True
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DiceCELoss", "DiceLoss", "dice_ce", "dice_loss"]


def _check(logits: torch.Tensor, target: torch.Tensor, ignore_index: Optional[int], validate: bool) -> None:
    if logits.dim() < 2:
        raise ValueError(f"logits must be (N, C, ...), got shape {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)} "
            "(expected the logits' shape without the class axis)"
        )
    if target.is_floating_point():
        raise TypeError(f"target must hold integer class labels, got {target.dtype}")
    if validate:
        c = max(2, logits.shape[1])
        bad = (target < 0) | (target >= c)
        if ignore_index is not None:
            bad &= target != ignore_index
        if bool(bad.any()):
            values = torch.unique(target[bad]).tolist()[:10]
            valid = f"[0, {c})" + ("" if ignore_index is None else f" or ignore_index={ignore_index}")
            raise ValueError(f"target values {values} are outside {valid}")


def _probs_onehot(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: Optional[int]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Probabilities and one-hot targets ``(N, C, ...)``, both zeroed at ignored pixels."""
    x = logits.float()
    if x.shape[1] == 1:  # binary logits: background = 1 - sigmoid
        p1 = torch.sigmoid(x)
        probs = torch.cat([1.0 - p1, p1], dim=1)
    else:
        probs = x.softmax(dim=1)
    num_classes = probs.shape[1]
    valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    safe = torch.where(valid, target, torch.zeros_like(target)).long()
    onehot = F.one_hot(safe, num_classes).movedim(-1, 1).to(probs.dtype)
    keep = valid.unsqueeze(1).to(probs.dtype)
    return probs * keep, onehot * keep


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: Optional[int] = None,
    smooth: float = 1.0,
    include_background: bool = True,
    batch_dice: bool = True,
    validate: bool = True,
) -> torch.Tensor:
    """Soft Dice loss from logits.

    Args:
        logits: Scores ``(N, C, ...)``; ``C == 1`` means binary logits (sigmoid).
        target: Integer labels ``(N, ...)``.
        ignore_index: Target label whose pixels are left out.
        smooth: Added to numerator and denominator; keeps classes absent from a batch finite.
        include_background: Whether class 0 counts in the mean (``False`` for foreground-only Dice).
        batch_dice: Sum over the whole batch per class (default), or score each sample and average.
        validate: Raise on target labels outside ``[0, C)`` other than ``ignore_index``.

    Returns:
        A scalar tensor ``1 - mean Dice``, in ``[0, 1]``.

    Raises:
        ValueError: On mismatched shapes or out-of-range labels.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> perfect = 20.0 * torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()
        >>> round(float(dice_loss(perfect, target, smooth=0.0)), 4)
        0.0
    """
    _check(logits, target, ignore_index, validate)
    probs, onehot = _probs_onehot(logits, target, ignore_index)
    dims = (0, *range(2, probs.dim())) if batch_dice else tuple(range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2.0 * inter + smooth) / (denom + smooth).clamp_min(1e-7)
    if not include_background:
        dice = dice[..., 1:]
    return 1.0 - dice.mean()


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
    """``ce_weight * cross-entropy + dice_weight * soft Dice loss``, both ignoring ``ignore_index``.

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
    _check(logits, target, ignore_index, True)
    if logits.shape[1] == 1:
        valid = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
        per_pixel = F.binary_cross_entropy_with_logits(logits[:, 0].float(), (target == 1).float(), reduction="none")
        ce = (per_pixel * valid).sum() / valid.sum().clamp_min(1)
    else:
        ce = F.cross_entropy(
            logits.float(),
            target.long(),
            weight=class_weights,
            ignore_index=-100 if ignore_index is None else ignore_index,
        )
        if ignore_index is not None and not bool((target != ignore_index).any()):
            ce = logits.sum() * 0.0  # every pixel ignored: cross_entropy would give NaN
    dl = dice_loss(logits, target, ignore_index, smooth, include_background, validate=False)
    return ce_weight * ce + dice_weight * dl


class DiceLoss(nn.Module):
    """Soft Dice loss from logits as a module (see :func:`dice_loss`).

    Args:
        ignore_index: Target label whose pixels are left out.
        smooth: Added to numerator and denominator.
        include_background: Whether class 0 counts in the mean.
        batch_dice: One Dice per class over the whole batch (default) or per sample.

    Example:
        >>> import torch
        >>> criterion = DiceLoss(ignore_index=255)
        >>> loss = criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
    """

    def __init__(
        self,
        ignore_index: Optional[int] = None,
        smooth: float = 1.0,
        include_background: bool = True,
        batch_dice: bool = True,
    ) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.smooth = smooth
        self.include_background = include_background
        self.batch_dice = batch_dice

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)``, integer ``target`` ``(N, ...)``; a scalar tensor."""
        return dice_loss(logits, target, self.ignore_index, self.smooth, self.include_background, self.batch_dice)


class DiceCELoss(nn.Module):
    """Cross-entropy plus soft Dice as a module (see :func:`dice_ce`).

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
