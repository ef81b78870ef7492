"""Focal loss (Lin et al. 2017): cross-entropy scaled down where the prediction is already confident."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ._core import ModeLoss, check_mode, class_log_probs, class_logits, one_vs_rest, prepare_targets, zero_loss

__all__ = ["FocalLoss", "focal_loss"]


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "multiclass",
    gamma: float = 2.0,
    alpha: Optional[float] = None,
    ignore_index: Optional[int] = None,
    from_logits: bool = True,
    softmax: bool = True,
    eps: float = 1e-7,
    validate: bool = True,
) -> torch.Tensor:
    """Focal loss ``-alpha_t (1 - p_t) ** gamma * log(p_t)``, averaged over the pixels that are not ignored.

    ``p_t`` is the probability given to the true answer. Binary and multilabel mode: one sigmoid per channel,
    ``p_t = p`` where the target is 1 and ``1 - p`` where it is 0, ``alpha_t = alpha`` or ``1 - alpha`` likewise;
    the mean is taken per channel, then over channels. Multiclass mode: the softmax probability of the target
    class (``gamma=0`` is cross-entropy); ``softmax=False`` scores each class against the rest with a sigmoid, as
    the binary loss on one-hot targets.

    smp's ``FocalLoss`` is this loss in binary and multilabel mode; its multiclass mode is ``softmax=False``. Where
    every pixel is ignored encdec returns 0 (smp NaN); smp's multilabel mode fails with ``ignore_index``, and its
    multiclass mode with ``from_logits=False`` passes log-probabilities where logits belong.

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        gamma: Focusing power; 0 gives (binary) cross-entropy.
        alpha: Weight of the positives (``1 - alpha`` for the negatives) in the sigmoid forms; ``None`` weighs
            both alike. Lin et al. use 0.25 with ``gamma=2``.
        ignore_index: Target value whose pixels are left out.
        from_logits: ``False`` when ``logits`` already hold probabilities (clamped to ``[eps, 1 - eps]``).
        softmax: Multiclass mode: softmax focal loss (default) or one sigmoid per class against the rest.
        eps: Clamp of given probabilities.
        validate: Raise on target values the mode does not allow.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, shapes or target values that do not fit it, or ``alpha`` with the softmax.

    Example:
        >>> import torch, torch.nn.functional as F
        >>> logits, target = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
        >>> torch.allclose(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target))
        True
        >>> loss = focal_loss(torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 4, 4)), mode="binary", alpha=0.25)
    """
    check_mode(mode)
    if mode == "multiclass" and softmax:
        if alpha is not None:
            raise ValueError("alpha weighs positives against negatives in the sigmoid forms of the focal loss; "
                             "pass softmax=False (one sigmoid per class) or alpha=None")
        t = prepare_targets(logits, target, mode, ignore_index, validate)
        valid = t.valid[:, 0]
        if not bool(valid.any()):
            return zero_loss(logits)
        log_pt = class_log_probs(logits, from_logits, eps).gather(1, t.labels.unsqueeze(1))[:, 0]
        term = -((1.0 - log_pt.exp()) ** gamma) * log_pt
        return (term * valid).sum() / valid.sum()
    if mode == "multiclass":
        target, mode = one_vs_rest(logits, target, ignore_index, validate)
        validate = False
    t = prepare_targets(logits, target, mode, ignore_index, validate)
    x, y = class_logits(logits, from_logits, eps), t.dense
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    term = (1.0 - torch.exp(-ce)) ** gamma * ce
    if alpha is not None:
        term = term * (alpha * y + (1.0 - alpha) * (1.0 - y))
    per_channel = (term * t.valid).sum((0, 2)) / t.valid.sum((0, 2)).clamp_min(1)
    return per_channel.mean()


class FocalLoss(ModeLoss):
    """Focal loss as a module (see ``focal_loss`` for the definition and the arguments).

    Args:
        mode: ``"binary"``, ``"multiclass"`` (default) or ``"multilabel"``.
        gamma: Focusing power.
        alpha: Weight of the positives in the sigmoid forms, or ``None``.
        ignore_index: Target value whose pixels are left out.
        from_logits: ``False`` when the inputs are probabilities.
        softmax: Multiclass mode: softmax focal loss (default) or one sigmoid per class (smp's multiclass).
        eps: Clamp of given probabilities.

    Raises:
        ValueError: An unknown mode, or ``alpha`` with the multiclass softmax.

    Example:
        >>> import torch
        >>> criterion = FocalLoss("binary", gamma=2.0, alpha=0.25, ignore_index=255)
        >>> loss = criterion(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "multiclass",
        *,
        gamma: float = 2.0,
        alpha: Optional[float] = None,
        ignore_index: Optional[int] = None,
        from_logits: bool = True,
        softmax: bool = True,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(mode, ignore_index)
        if mode == "multiclass" and softmax and alpha is not None:
            raise ValueError("alpha weighs positives against negatives in the sigmoid forms of the focal loss; "
                             "pass softmax=False (one sigmoid per class) or alpha=None")
        self.gamma, self.alpha, self.from_logits, self.softmax, self.eps = gamma, alpha, from_logits, softmax, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return focal_loss(logits, target, mode=self.mode, gamma=self.gamma, alpha=self.alpha,
                          ignore_index=self.ignore_index, from_logits=self.from_logits, softmax=self.softmax,
                          eps=self.eps)
