"""Lovasz losses (Berman et al. 2018): the Lovasz extension of the Jaccard loss, a convex surrogate of 1 - IoU
that is optimised directly. Lovasz-softmax for multiclass targets, the Lovasz hinge for binary and multilabel."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ._core import ModeLoss, check_mode, class_logits, class_probs, prepare_targets

__all__ = ["LovaszLoss", "lovasz_loss"]


def _jaccard_steps(fg_sorted: torch.Tensor) -> torch.Tensor:
    """The gradient of the Lovasz extension of the Jaccard loss at errors sorted in decreasing order (Berman et al.,
    algorithm 1): the increase of ``1 - IoU`` as each next pixel is counted wrong, from its 0/1 truth ``(..., P)``."""
    total = fg_sorted.sum(-1, keepdim=True)
    intersection = total - fg_sorted.cumsum(-1)
    union = total + (1.0 - fg_sorted).cumsum(-1)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], dim=-1)


def _extension(errors: torch.Tensor, fg: torch.Tensor, valid: torch.Tensor, hinge: bool) -> torch.Tensor:
    """The Lovasz extension ``(B, K)`` of errors ``(B, K, P)``; invalid pixels sort last and add nothing."""
    order = errors.masked_fill(~valid, float("-inf")).argsort(dim=-1, descending=True, stable=True)
    err = errors.gather(-1, order)
    keep = valid.gather(-1, order)
    err = F.relu(err) if hinge else err
    return (err * keep * _jaccard_steps(fg.gather(-1, order))).sum(-1)


def lovasz_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    mode: str = "multiclass",
    ignore_index: Optional[int] = None,
    per_image: bool = False,
    from_logits: bool = True,
    eps: float = 1e-7,
    validate: bool = True,
) -> torch.Tensor:
    """Lovasz-softmax (multiclass) or Lovasz hinge (binary, multilabel) loss.

    Multiclass: for each class present in the target, the errors ``|y_c - p_c|`` of the softmax probabilities are
    sorted in decreasing order and weighted by the steps of the Jaccard loss (the Lovasz extension); the loss is the
    mean over present classes. Binary and multilabel: the hinge errors ``1 - x * (2y - 1)`` of the logits ``x``,
    through a ReLU, with the same weights, one loss per label, averaged over labels. Pixels whose target is
    ``ignore_index`` are left out; an image or label with nothing left adds 0.

    Differences from smp's ``LovaszLoss``: in multilabel mode smp pools every label of every pixel into one binary
    problem, encdec averages one hinge per label (as the softmax averages classes); smp ignores ``from_logits``,
    encdec takes probabilities when it is ``False``.

    Args:
        logits: Scores ``(N, C, ...)`` (see ``dice_loss`` for the shapes of each mode).
        target: Targets of the mode (see ``dice_loss``).
        mode: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        per_image: One loss per image, averaged, instead of one over the batch.
        from_logits: ``False`` when ``logits`` already hold probabilities (the hinge then works on their logits,
            clamped to ``[eps, 1 - eps]``).
        eps: Clamp of given probabilities in the hinge.
        validate: Raise on target values the mode does not allow.

    Returns:
        A scalar tensor.

    Raises:
        ValueError: An unknown mode, or shapes or target values that do not fit it.

    Example:
        >>> import torch
        >>> target = torch.tensor([[[0, 1], [1, 1]]])
        >>> perfect = 20.0 * torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).float()
        >>> float(lovasz_loss(perfect, target)) < 1e-6
        True
        >>> loss = lovasz_loss(torch.randn(2, 1, 4, 4), torch.randint(0, 2, (2, 4, 4)), mode="binary")
    """
    check_mode(mode)
    t = prepare_targets(logits, target, mode, ignore_index, validate)
    fg, valid = t.dense, t.valid.expand_as(t.dense)
    if mode == "multiclass":
        errors = (fg - class_probs(logits, mode, from_logits)).abs()
    else:
        errors = 1.0 - class_logits(logits, from_logits, eps) * (2.0 * fg - 1.0)
    if not per_image:  # the whole batch as one image
        errors, fg, valid = (v.transpose(0, 1).reshape(1, v.shape[1], -1) for v in (errors, fg, valid))
    losses = _extension(errors, fg, valid, hinge=mode != "multiclass")
    if mode == "multiclass":  # classes present in the target only
        present = fg.sum(-1) > 0
        losses = (losses * present).sum(-1) / present.sum(-1).clamp_min(1)
    else:
        losses = losses.mean(-1)
    return losses.mean()


class LovaszLoss(ModeLoss):
    """Lovasz-softmax / Lovasz hinge loss as a module (see ``lovasz_loss``).

    Args:
        mode: ``"binary"``, ``"multiclass"`` (default) or ``"multilabel"``.
        ignore_index: Target value whose pixels are left out.
        per_image: One loss per image, averaged, instead of one over the batch.
        from_logits: ``False`` when the inputs are probabilities.
        eps: Clamp of given probabilities in the hinge.

    Raises:
        ValueError: An unknown mode.

    Example:
        >>> import torch
        >>> criterion = LovaszLoss("multiclass", ignore_index=255)
        >>> loss = criterion(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
    """

    def __init__(
        self,
        mode: str = "multiclass",
        *,
        ignore_index: Optional[int] = None,
        per_image: bool = False,
        from_logits: bool = True,
        eps: float = 1e-7,
    ) -> None:
        super().__init__(mode, ignore_index)
        self.per_image, self.from_logits, self.eps = per_image, from_logits, eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: ``logits`` ``(N, C, ...)`` and the targets of the mode; a scalar tensor."""
        return lovasz_loss(logits, target, mode=self.mode, ignore_index=self.ignore_index, per_image=self.per_image,
                           from_logits=self.from_logits, eps=self.eps)
