"""Segmentation losses for the three kinds of target smp names: ``"binary"`` (one logit, 0/1 masks),
``"multiclass"`` (one logit per class, integer masks) and ``"multilabel"`` (one logit per label, 0/1 masks
``(N, C, H, W)``).

Soft Dice, Jaccard (IoU) and Tversky; focal; Lovasz-softmax and Lovasz hinge; binary cross-entropy with label
smoothing; and the pairs Dice + cross-entropy and BCE + Dice. Each is a function and a module; each takes
``ignore_index`` (those pixels count nowhere and receive no gradient) and ``from_logits`` (``False`` for
probabilities), and refuses targets its mode does not allow with a ``ValueError`` (or ``TypeError``) naming them.
Their values equal smp's on the same inputs; where a convention differs the loss's docstring says how.

Example:
    >>> import torch
    >>> from encdec.losses import DiceLoss, FocalLoss, LovaszLoss
    >>> logits, target = torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8))
    >>> loss = DiceLoss(ignore_index=255)(logits, target)
    >>> 0.0 <= float(loss) <= 1.0
    True
    >>> binary = LovaszLoss("binary")(torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8)))
"""

from __future__ import annotations

from ._bce import BCEDiceLoss, SoftBCEWithLogitsLoss, bce_dice_loss, soft_bce_loss
from ._core import MODES
from ._focal import FocalLoss, focal_loss
from ._lovasz import LovaszLoss, lovasz_loss
from ._overlap import DiceCELoss, DiceLoss, JaccardLoss, TverskyLoss, dice_ce, dice_loss, jaccard_loss, tversky_loss

__all__ = [
    "MODES", "BCEDiceLoss", "DiceCELoss", "DiceLoss", "FocalLoss", "JaccardLoss", "LovaszLoss",
    "SoftBCEWithLogitsLoss", "TverskyLoss", "bce_dice_loss", "dice_ce", "dice_loss", "focal_loss", "jaccard_loss",
    "lovasz_loss", "soft_bce_loss", "tversky_loss",
]
