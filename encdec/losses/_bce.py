"""Binary cross-entropy with logits for binary and multilabel targets (label smoothing, ignored pixels, weighted
positives), and its sum with soft Dice."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from ._core import ModeLoss, check_mode, class_logits, one_vs_rest, prepare_targets, zero_loss
from ._overlap import dice_loss

__all__ = ["BCEDiceLoss", "SoftBCEWithLogitsLoss", "bce_dice_loss", "soft_bce_loss"]

PosWeight = Union[float, Sequence[float], torch.Tensor, None]


def soft_bce_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    ignore_index: Optional[int] = None,
    smooth_factor: Optional[float] = None,
    pos_weight: PosWeight = None,
    from_logits: bool = True,
    eps: float = 1e-7,
    validate: bool = True,
) -> torch.Tensor:
    """Binary cross-entropy ``-(w y log p + (1 - y) log(1 - p))`` with ``p = sigmoid(x)``, averaged over the target
    values that are not ``ignore_index``.

    ``smooth_factor=s`` moves the targets to ``s`` and ``1 - s`` (label smoothing); ``pos_weight`` (``w``) weighs
    the positives of each channel. In multiclass mode each class is scored against the rest on one-hot targets
    (one-channel logits: the binary loss).

    Differences from smp's ``SoftBCEWithLogitsLoss``: smp divides by every target value, ignored ones included (it
    equals this loss times the fraction of values kept), and its default ``ignore_index`` is -100 (here ``None``);
    smp takes any target values, encdec 0/1 (smoothing is ``smooth_factor``'s job). Where every value is ignored
    the loss is 0.

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"`` (default), ``"multiclass"`` or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        smooth_factor: Label smoothing: targets ``1 - s`` and ``s`` instead of 1 and 0.
        pos_weight: Weight of the positives: one value, or one per channel.
        from_logits: ``False`` when ``logits`` already hold probabilities (clamped to ``[eps, 1 - eps]``).
        eps: Clamp of given probabilities.
        validate: Raise on target values the mode does not allow.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, or shapes or target values that do not fit it.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> x, y = torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 1, 4, 4)).float()
        >>> torch.allclose(soft_bce_loss(x, y), F.binary_cross_entropy_with_logits(x, y))
        True
        >>> loss = soft_bce_loss(x, y, smooth_factor=0.1, ignore_index=255)
    """
    check_mode(mode)
    if mode == "multiclass":
        target, mode = one_vs_rest(logits, target, ignore_index, validate)
        validate = False
    t = prepare_targets(logits, target, mode, ignore_index, validate)
    x, y = class_logits(logits, from_logits, eps), t.dense
    if smooth_factor is not None:
        y = y * (1.0 - smooth_factor) + (1.0 - y) * smooth_factor
    weight = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device).reshape(-1, 1)
    if weight is not None and weight.shape[0] not in (1, x.shape[1]):
        raise ValueError(f"pos_weight has {weight.shape[0]} values for {x.shape[1]} channels")
    loss = F.binary_cross_entropy_with_logits(x, y, pos_weight=weight, reduction="none")
    count = t.valid.expand_as(loss).sum()
    if not bool(count):
        return zero_loss(logits)
    return (loss * t.valid).sum() / count


def bce_dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "binary",
    bce_weight: float = 1.0,
    dice_weight: float = 1.0,
    ignore_index: Optional[int] = None,
    smooth: float = 1.0,
    smooth_factor: Optional[float] = None,
    pos_weight: PosWeight = None,
    empty: str = "score",
    from_logits: bool = True,
    eps: float = 1e-7,
) -> torch.Tensor:
    """``bce_weight * soft_bce_loss + dice_weight * dice_loss`` on the same sigmoid probabilities.

    Binary and multilabel targets; in multiclass mode each class against the rest on one-hot targets, in both
    terms (for the softmax pair use ``dice_ce``). smp has no combined loss: this is smp's
    ``SoftBCEWithLogitsLoss`` (see ``soft_bce_loss`` for its mean) plus its ``DiceLoss`` (see
    ``dice_loss`` for its smoothing).

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"`` (default), ``"multiclass"`` or ``"multilabel"``.
        bce_weight: Weight of the cross-entropy term.
        dice_weight: Weight of the Dice term.
        ignore_index: Target value whose pixels are left out of both terms.
        smooth: Dice smoothing.
        smooth_factor: Label smoothing of the cross-entropy.
        pos_weight: Weight of the positives in the cross-entropy: one value, or one per channel.
        empty: ``"score"``, ``"zero"`` or ``"drop"`` a channel without target pixels in the Dice term.
        from_logits: ``False`` when ``logits`` already hold probabilities.
        eps: Clamp of given probabilities and lower bound of the Dice denominator.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, or shapes or target values that do not fit it.

    Example:
        >>> import torch
        >>> loss = bce_dice_loss(torch.randn(2, 1, 8, 8, requires_grad=True), torch.randint(0, 2, (2, 8, 8)))
        >>> loss.backward()
    """
    check_mode(mode)
    if mode == "multiclass":
        target, mode = one_vs_rest(logits, target, ignore_index)
    bce = soft_bce_loss(logits, target, mode=mode, ignore_index=ignore_index, smooth_factor=smooth_factor,
                        pos_weight=pos_weight, from_logits=from_logits, eps=eps)
    dice = dice_loss(logits, target, ignore_index, smooth, mode=mode, from_logits=from_logits, eps=eps, empty=empty,
                     validate=False)
    return bce_weight * bce + dice_weight * dice


class SoftBCEWithLogitsLoss(ModeLoss):
    """Binary cross-entropy with logits as a module (see ``soft_bce_loss``).

    Args:
        mode: ``"binary"`` (default), ``"multiclass"`` (each class against the rest) or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out (smp's default is -100).
        smooth_factor: Label smoothing: targets ``1 - s`` and ``s``.
        pos_weight: Weight of the positives: one value, or one per channel.
        from_logits: ``False`` when the inputs are probabilities.
        eps: Clamp of given probabilities.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = SoftBCEWithLogitsLoss("multilabel", smooth_factor=0.1, ignore_index=255)
        >>> loss = criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 2, (2, 3, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "binary",
        *,
        ignore_index: Optional[int] = None,
        smooth_factor: Optional[float] = None,
        pos_weight: PosWeight = None,
        from_logits: bool = True,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(mode, ignore_index)
        self.smooth_factor, self.from_logits, self.eps = smooth_factor, from_logits, eps
        weight = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32).reshape(-1)
        self.register_buffer("pos_weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return soft_bce_loss(logits, target, mode=self.mode, ignore_index=self.ignore_index,
                             smooth_factor=self.smooth_factor, pos_weight=self.pos_weight,
                             from_logits=self.from_logits, eps=self.eps)


class BCEDiceLoss(ModeLoss):
    """Binary cross-entropy plus soft Dice as a module (see ``bce_dice_loss``).

    Args:
        mode: ``"binary"`` (default), ``"multiclass"`` (each class against the rest) or ``"multilabel"``.
        bce_weight: Weight of the cross-entropy term.
        dice_weight: Weight of the Dice term.
        ignore_index: Target value whose pixels are left out of both terms.
        smooth: Dice smoothing.
        smooth_factor: Label smoothing of the cross-entropy.
        pos_weight: Weight of the positives in the cross-entropy.
        empty: ``"score"``, ``"zero"`` or ``"drop"`` a channel without target pixels in the Dice term.
        from_logits: ``False`` when the inputs are probabilities.
        eps: Clamp of given probabilities and lower bound of the Dice denominator.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = BCEDiceLoss("binary", ignore_index=255)
        >>> loss = criterion(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "binary",
        *,
        bce_weight: float = 1.0,
        dice_weight: float = 1.0,
        ignore_index: Optional[int] = None,
        smooth: float = 1.0,
        smooth_factor: Optional[float] = None,
        pos_weight: PosWeight = None,
        empty: str = "score",
        from_logits: bool = True,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(mode, ignore_index)
        self.bce_weight, self.dice_weight = bce_weight, dice_weight
        self.smooth, self.smooth_factor = smooth, smooth_factor
        self.empty, self.from_logits, self.eps = empty, from_logits, eps
        weight = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=torch.float32).reshape(-1)
        self.register_buffer("pos_weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return bce_dice_loss(logits, target, mode=self.mode, bce_weight=self.bce_weight,
                             dice_weight=self.dice_weight, ignore_index=self.ignore_index, smooth=self.smooth,
                             smooth_factor=self.smooth_factor, pos_weight=self.pos_weight, empty=self.empty,
                             from_logits=self.from_logits, eps=self.eps)
