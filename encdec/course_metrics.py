"""The course reports' own metrics, to compare encdec's numbers with theirs; they are not the standard metrics.

Both formulas below differ from the standard definitions in ``encdec.metrics``. For each one this module says
whether it copies the report's printed code or interprets it, because one of them cannot be copied as printed.

**Pixel accuracy of the VOC U-Net report (copied).** Its ``accuracy_check`` divides, for one image, the pixels
whose prediction equals the label by *all* the image's pixels, the boundary pixels (class 21) included, whereas
the standard pixel accuracy leaves the ignored label out. ``accuracy_check_for_batch`` averages these values over
the images of a batch (dividing by ``inputs.size()[0]``), and ``get_loss_train`` / ``val_model`` average the batch
values over the batches (``total_acc/(batch+1)``), so a smaller last batch weighs as much as a full one.
``course_pixel_accuracy`` is one batch's value and ``CourseMetrics`` averages the batches in the same way,
both computed as printed. The VOC fine-tuning report does not print its accuracy code; it fills in the same course
skeleton.

**Dice of the Pet report (interpreted).** Its ``dice_score`` reads:

    preds = torch.sigmoid(preds)
    preds = (preds > 0.5).float()
    intersection = (preds * masks).sum()
    C, H, W = preds.shape
    total_pixels = 2.0 * C * H * W
    dice = 2.0 * intersection / (total_pixels + smooth)

and its ``evaluate`` calls ``dice_score(outputs, masks)`` with the model's ``(N, 2, H, W)`` outputs and the
``(N, H, W)`` masks, adds the values up and divides by ``num_batches``. As printed, this cannot run on those
outputs: ``preds * masks`` broadcasts ``(N, 2, H, W)`` against ``(N, H, W)`` only when N is 1 or 2, and
``C, H, W = preds.shape`` fails on every 4-D tensor. The Dice values the report prints therefore come from code it
does not show, and no function can reproduce that code from the listing. What the listing does define is the
formula on a ``(N, H, W)`` label map, where it runs: ``C`` then takes the batch size, so a batch scores
``2 |A and B| / (2 N H W)``, the foreground pixels predicted and labelled as pet, divided by every pixel of the
batch. This module reduces logits to labels (the argmax over the two classes, an interpretation) and offers two
averages:

* ``course_dice_per_batch``: the listing's formula per batch, then the mean over the batches, as ``evaluate``
  averages it. Only the step from logits to labels is interpreted.
* ``course_dice`` and ``CourseMetrics``: the same ratio per image, ``2 |A and B| / (2 H W)``, averaged over
  all images. It equals the per-batch mean when every batch holds the same number of images, and differs when the
  last batch is smaller.

Neither is the Dice coefficient, which divides by ``|A| + |B|``: a perfect prediction of a pet covering a quarter
of the image scores 0.25 by the report's formula and 1.0 by the standard one.

Two details of the listing are left out on purpose. Its ``smooth = 1e-10`` changes a value by less than 1e-10 of
itself (the denominator is at least 2), far below the float32 precision the listing computes in; and encdec
computes in float64, so its values can differ from float32 ones after about the seventh significant digit.

Example:
    >>> import torch
    >>> from encdec.course_metrics import course_dice
    >>> mask = torch.zeros(1, 4, 4, dtype=torch.long); mask[0, :2, :2] = 1
    >>> course_dice(mask, mask)
    0.25
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Tuple

import torch

from .batches import check_finite, class_labels
from .metrics import SegmentationMetrics

__all__ = ["CourseMetrics", "course_dice", "course_dice_per_batch", "course_pixel_accuracy"]


def _labels(preds: torch.Tensor) -> torch.Tensor:
    if preds.is_floating_point():
        check_finite(preds, "course metrics")
        return (preds[:, 0] > 0).long() if preds.shape[1] == 1 else class_labels(preds)
    return preds


def course_pixel_accuracy(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """One batch's pixel accuracy as the VOC U-Net report computes it (copied from its listing).

    For each image, the pixels whose label equals the target divided by all its pixels, nothing ignored (the
    report's ``accuracy_check``); then the mean over the images (``accuracy_check_for_batch``). Averaging these
    batch values over an epoch, as the report does, is ``CourseMetrics``'s job.

    Args:
        preds: Labels ``(N, H, W)`` or logits ``(N, C, H, W)`` (reduced by argmax, as the report does).
        targets: Labels ``(N, H, W)``, the boundary as a class of its own (21), as the report counts it.

    Returns:
        The mean over the images of their pixel accuracy.

    Example:
        >>> import torch
        >>> course_pixel_accuracy(torch.tensor([[[0, 1]], [[1, 1]]]), torch.tensor([[[0, 1]], [[0, 21]]]))
        0.5
    """
    labels = _labels(preds)
    per_image = (labels == targets).flatten(1).double().mean(dim=1)
    return float(per_image.mean())


def course_dice(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """The Pet report's Dice formula applied per image and averaged over the images (an interpretation).

    For each image, ``2 |A and B| / (2 H W)``: the pixels predicted and labelled as pet (class 1), times two,
    divided by twice the image's pixel count. The report's ``dice_score`` cannot run on its models' outputs as
    printed (see the module notes); this is its formula for one image. ``course_dice_per_batch`` averages it
    per batch instead, as the report's ``evaluate`` loop does.

    Args:
        preds: Labels ``(N, H, W)`` or logits ``(N, 2, H, W)`` (reduced by argmax).
        targets: Binary labels ``(N, H, W)``, 1 for the pet.

    Returns:
        The mean over the images of their value.

    Example:
        >>> import torch
        >>> course_dice(torch.ones(1, 2, 2, dtype=torch.long), torch.tensor([[[1, 1], [0, 0]]]))
        0.5
    """
    labels = _labels(preds)
    inter = ((labels == 1) & (targets == 1)).flatten(1).double().sum(dim=1)
    pixels = targets[0].numel()
    return float((2.0 * inter / (2.0 * pixels)).mean())


def _listing_dice(preds: torch.Tensor, targets: torch.Tensor) -> float:
    """The Pet report's ``dice_score`` on one batch, on labels: ``2 * intersection / (2.0 * C * H * W)``."""
    if preds.dim() == 4:
        preds = _labels(preds)  # the interpreted step: logits -> the argmax label of each pixel
    if preds.dim() != 3 or preds.shape != targets.shape:
        raise ValueError(f"course_dice_per_batch: expected labels (N, H, W) or logits (N, 2, H, W) and targets "
                         f"(N, H, W) of the same size, got {tuple(preds.shape)} and {tuple(targets.shape)}")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError("course_dice_per_batch: targets must be binary (0 background, 1 pet), as the report's "
                         "masks are")
    foreground = (torch.sigmoid(preds.double()) > 0.5).double()  # as printed: label 1 -> 1.0, label 0 -> 0.0
    intersection = (foreground * targets.double()).sum()
    c, h, w = preds.shape  # the listing's ``C, H, W = preds.shape``: on a label map C is the batch size
    total_pixels = 2.0 * c * h * w
    return float(2.0 * intersection / total_pixels)


def course_dice_per_batch(batches: Iterable[Tuple[torch.Tensor, torch.Tensor]]) -> float:
    """The Pet report's Dice averaged as its ``evaluate`` loop averages it: one value per batch, then their mean.

    Each batch scores the listing's ``dice_score`` on label maps, ``2 |A and B| / (2 N H W)``: the pixels of the
    whole batch predicted and labelled as pet, divided by all the batch's pixels. The values are summed and
    divided by the number of batches (``total_dice_score / num_batches``), so a smaller last batch weighs as much
    as a full one. Copied from the listing except for one step: logits are reduced to labels by the argmax over
    the classes, because the printed code cannot run on ``(N, 2, H, W)`` logits (see the module notes).

    Args:
        batches: ``(preds, targets)`` pairs in the order the report's loader gives them: ``preds`` labels
            ``(N, H, W)`` (integer, or float 0.0 / 1.0) or logits ``(N, 2, H, W)``; ``targets`` binary labels
            ``(N, H, W)``, 1 for the pet.

    Returns:
        The mean over the batches of their value.

    Raises:
        ValueError: No batches, shapes that do not match, or targets other than 0 and 1.

    Example:
        >>> import torch
        >>> mask = torch.zeros(2, 4, 4, dtype=torch.long); mask[:, :2, :2] = 1  # a quarter of each image
        >>> last = torch.ones(1, 4, 4, dtype=torch.long)  # a last batch of one image, all pet
        >>> course_dice_per_batch([(mask, mask), (last, last)])  # (0.25 + 1.0) / 2
        0.625
        >>> course_dice(torch.cat([mask, last]), torch.cat([mask, last]))  # (0.25 + 0.25 + 1.0) / 3
        0.5
    """
    values = [_listing_dice(preds, targets) for preds, targets in batches]
    if not values:
        raise ValueError("course_dice_per_batch: no batches")
    return sum(values) / len(values)


class CourseMetrics:
    """The standard segmentation metrics plus the reports' own, for ``encdec eval --convention course``.

    ``compute()`` returns everything ``encdec.metrics.SegmentationMetrics`` reports, and:

    * ``course_pixel_accuracy``: the mean over batches of ``course_pixel_accuracy``, accumulated as the VOC
      U-Net report accumulates it (copied).
    * ``course_dice`` (two-class models only): the mean over all images of ``course_dice``, the Pet report's
      formula per image (interpreted). The report averages per batch instead; ``course_dice_per_batch`` does,
      and gives the same value when every batch holds the same number of images.

    Pass it as ``metrics=`` to ``encdec.evaluate``.

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
