"""The course reports' own metrics, to compare encdec's numbers with theirs; not the correct ones.

Both differ from the standard definitions in ``encdec.metrics``, and on purpose reproduce the reports'
formulas exactly:

* **Seed 000/004 pixel accuracy** (``accuracy_check_for_batch``): for each image, equal pixels divided by *all*
  its pixels, the boundary pixels included (the correct pixel accuracy leaves the ignore label out); these are
  averaged over the images of a batch, and the batch values averaged over the batches, so a smaller last batch
  weighs as much as a full one.
* **Seed 003 Dice** (``dice_score``): ``2 |A and B| / (2 H W)``, the foreground intersection divided by the image's
  pixel count, averaged over images. The standard Dice divides by ``|A| + |B|``: a perfect prediction of a pet
  covering a quarter of the image scores 0.25 by the report's formula and 1.0 by the standard one.

Example:
    >>> import torch
    >>> from encdec.course_metrics import course_dice
    >>> mask = torch.zeros(1, 4, 4, dtype=torch.long); mask[0, :2, :2] = 1
    >>> course_dice(mask, mask)
    0.25
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import torch

from .batches import check_finite, class_labels
from .metrics import SegmentationMetrics

__all__ = ["CourseMetrics", "course_dice", "course_pixel_accuracy"]


def _labels(preds: torch.Tensor) -> torch.Tensor:
    if preds.is_floating_point():
        check_finite(preds, "course metrics")
        return (preds[:, 0] > 0).long() if preds.shape[1] == 1 else class_labels(preds)
    return preds


def course_pixel_accuracy(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Seed 000/004's batch accuracy: the mean over images of (equal pixels / all pixels), nothing ignored.

    Args:
        preds: Labels ``(N, H, W)`` or logits ``(N, C, H, W)``.
        targets: Labels ``(N, H, W)`` (the boundary as a class, as the report counts it).

    Example:
        >>> import torch
        >>> course_pixel_accuracy(torch.tensor([[[0, 1]], [[1, 1]]]), torch.tensor([[[0, 1]], [[0, 21]]]))
        0.5
    """
    labels = _labels(preds)
    per_image = (labels == targets).flatten(1).double().mean(dim=1)
    return float(per_image.mean())


def course_dice(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """Seed 003's Dice: per image ``2 |A and B| / (2 H W)`` for the foreground (class 1), averaged over images.

    Args:
        preds: Labels ``(N, H, W)`` or logits ``(N, 2, H, W)``.
        targets: Binary labels ``(N, H, W)``.

    Example:
        >>> import torch
        >>> course_dice(torch.ones(1, 2, 2, dtype=torch.long), torch.tensor([[[1, 1], [0, 0]]]))
        0.5
    """
    labels = _labels(preds)
    inter = ((labels == 1) & (targets == 1)).flatten(1).double().sum(dim=1)
    pixels = targets[0].numel()
    return float((2.0 * inter / (2.0 * pixels)).mean())


class CourseMetrics:
    """The standard segmentation metrics plus the reports' own, accumulated as the reports accumulate them.

    ``compute()`` returns everything ``encdec.metrics.SegmentationMetrics`` reports, and
    ``course_pixel_accuracy`` (mean over batches of ``course_pixel_accuracy``) and ``course_dice`` (mean over
    images of ``course_dice``, for two-class models). Pass it as ``metrics=`` to ``encdec.evaluate``.

    Args:
        num_classes: Model outputs.
        ignore_index: The ignore label of the standard metrics (the course ones ignore nothing).

    Example:
        >>> import torch
        >>> m = CourseMetrics(2)
        >>> m.update(torch.tensor([[[0, 1]]]), torch.tensor([[[0, 1]]]))
        >>> m.compute()["course_pixel_accuracy"], m.compute()["course_dice"]
        (1.0, 0.5)
    """

    def __init__(self, num_classes: int, ignore_index: Optional[int] = None) -> None:
        self.standard = SegmentationMetrics(num_classes, ignore_index=ignore_index)
        self.num_classes = num_classes
        self.batch_accuracies: List[float] = []
        self.image_dice: List[float] = []

    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        """Add a batch (logits or labels, and targets).

        Example:
            >>> import torch
            >>> CourseMetrics(3).update(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long))
        """
        self.standard.update(preds, targets)
        labels = _labels(preds)
        self.batch_accuracies.append(course_pixel_accuracy(labels, targets))
        if self.num_classes == 2:
            self.image_dice += [course_dice(labels[i:i + 1], targets[i:i + 1]) for i in range(len(labels))]

    def reset(self) -> None:
        """Forget every batch.

        Example:
            >>> CourseMetrics(2).reset()
        """
        self.standard.reset()
        self.batch_accuracies, self.image_dice = [], []

    def sync(self) -> None:
        """Sum the standard counts over processes (the course values are per process, as in the reports).

        Example:
            >>> CourseMetrics(2).sync()
        """
        self.standard.sync()

    def compute(self) -> Dict[str, Any]:
        """The standard scores and the course ones.

        Example:
            >>> import torch
            >>> m = CourseMetrics(2); m.update(torch.tensor([[[1, 1]]]), torch.tensor([[[1, 0]]]))
            >>> m.compute()["course_pixel_accuracy"]
            0.5
        """
        scores = dict(self.standard.compute())
        nan = float("nan")
        scores["course_pixel_accuracy"] = (sum(self.batch_accuracies) / len(self.batch_accuracies)
                                           if self.batch_accuracies else nan)
        if self.num_classes == 2:
            scores["course_dice"] = sum(self.image_dice) / len(self.image_dice) if self.image_dice else nan
        return scores
