"""How ``fit`` treats a model's auxiliary classification head (smp's ``aux_params``).

With ``fit(aux_loss_weight=w)`` the head is trained beside the masks: its targets come from the masks themselves,
whether each class is present in the image (a head of ``num_classes`` outputs) or whether anything but the
background is (a head of one output), with binary cross-entropy on its logits, added to the mask loss times
``w``. Without it the head is left as it is: it gets no gradient for the run (so no optimizer step moves it).

Example:
    >>> import torch, encdec
    >>> model = encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": 3})
    >>> head = AuxiliaryHead.of(model, 0.4)
    >>> head.targets(torch.tensor([[[0, 2], [2, 2]]]), ignore_index=None).tolist()
    [[1.0, 0.0, 1.0]]
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Iterator, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AuxiliaryHead"]


class AuxiliaryHead:
    """A model's ``classification_head`` during ``fit``: trained with ``weight``, or held still (``weight=None``).

    Use :meth:`of`, which checks the head against the weight before anything runs.
    """

    def __init__(self, model: nn.Module, head: nn.Module, weight: Optional[float]) -> None:
        self.model, self.head, self.weight = model, head, weight
        self.classes = int(head.classes)
        self._trainable = [p.requires_grad for p in head.parameters()]
        if weight is None:
            head.requires_grad_(False)

    @classmethod
    def of(cls, model: nn.Module, weight: Optional[float]) -> Optional[AuxiliaryHead]:
        """The head's treatment for ``fit(aux_loss_weight=weight)``; ``None`` for a model without one.

        Raises:
            ValueError: A weight without a head, a weight that is not a positive number, a head ending in an
                activation (it trains on logits), or a head of other than 1 or ``num_classes`` outputs.

        Example:
            >>> import encdec
            >>> AuxiliaryHead.of(encdec.fpn(encoder="resnet18"), None) is None
            True
        """
        head = getattr(model, "classification_head", None)
        if head is None:
            if weight is not None:
                raise ValueError("aux_loss_weight trains a classification head, and the model has none: build it "
                                 "with aux_params={'classes': ...} (1, or its number of classes)")
            return None
        if weight is None:
            warnings.warn("the model's classification_head is not trained by this run (it gets no gradient): pass "
                          "aux_loss_weight=... (e.g. 0.4) to train it", UserWarning, stacklevel=3)
            return cls(model, head, None)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
                or weight <= 0:
            raise ValueError(f"aux_loss_weight must be a positive number, got {weight!r}")
        if getattr(head, "activation", None) not in (None, "identity"):
            raise ValueError(f"the classification head ends in activation={head.activation!r}; fit trains it on "
                             "logits: build the model with aux_params activation=None (and apply the activation "
                             "to forward_with_labels' output yourself)")
        num_classes = int(getattr(model, "num_classes", 0))
        if head.classes not in (1, num_classes):
            raise ValueError(f"fit trains a classification head of 1 output (anything but background present) or "
                             f"{num_classes} (each class present); this one has {head.classes}")
        return cls(model, head, float(weight))

    def targets(self, masks: Tensor, ignore_index: Optional[int]) -> Tensor:
        """Per image, whether each class is present (``num_classes`` outputs) or anything but class 0 is (one
        output), as floats; ignored pixels count for nothing."""
        masks = masks.long().flatten(1)
        valid = masks != ignore_index if ignore_index is not None else torch.ones_like(masks, dtype=torch.bool)
        if self.classes == 1:
            return ((masks > 0) & valid).any(dim=1, keepdim=True).float()
        valid &= (masks >= 0) & (masks < self.classes)  # a value outside the classes names none of them
        found = F.one_hot(masks.clamp(0, self.classes - 1), self.classes) & valid.unsqueeze(-1)
        return found.any(dim=1).float()

    def loss(self, labels: Tensor, masks: Tensor, ignore_index: Optional[int]) -> Tensor:
        """``weight`` times the binary cross-entropy of the head's logits against :meth:`targets`."""
        targets = self.targets(masks, ignore_index).to(labels.device)
        return self.weight * F.binary_cross_entropy_with_logits(labels.float(), targets)  # type: ignore[operator]

    @contextlib.contextmanager
    def labels_returned(self) -> Iterator[None]:
        """While training, the model returns ``(masks, labels)`` (when the head is trained)."""
        previous = self.model.returns_labels
        self.model.returns_labels = self.weight is not None
        try:
            yield
        finally:
            self.model.returns_labels = previous

    def release(self) -> None:
        """The head's parameters trainable again as they were before ``fit``."""
        for parameter, trainable in zip(self.head.parameters(), self._trainable):
            parameter.requires_grad_(trainable)
