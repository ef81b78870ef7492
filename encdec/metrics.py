"""Segmentation and classification metrics, all computed from one confusion matrix.

Every segmentation number (pixel accuracy, mean class accuracy, per-class and mean IoU, frequency-weighted IoU,
per-class and mean Dice) is derived from the same ``C x C`` confusion matrix, so the numbers always agree with
each other. The matrix is accumulated on the device of the inputs with a single ``torch.bincount`` pass.

Conventions:

* rows of the confusion matrix are the target class, columns the predicted class;
* pixels whose target equals ``ignore_index`` are left out of every count (``ignore_index`` may be any
  integer, including 255 or -1). When ``ignore_index`` is itself a class index (``0 <= ignore_index < C``,
  e.g. the VOC boundary class 21), that class gets NaN scores and is left out of the means;
* a class whose score is ``0 / 0`` (absent from both target and prediction for IoU and Dice, absent from the
  target for class accuracy) is scored ``zero_division``: NaN by default, which reports NaN for that class and
  leaves it out of the means. Pass ``zero_division=0.0`` or ``1.0`` to count such classes instead;
* ``dice`` for a two-class problem is the foreground Dice (class 1), the number binary-segmentation papers
  report; for more classes it is the mean over classes;
* NaN or infinite scores (logits) are refused with ``encdec.batches.NonFiniteError``, never turned into
  labels: ``argmax`` of a NaN row is a class, and such a model would be scored as if it had predicted it.

Example:
    >>> import torch
    >>> from encdec.metrics import SegmentationMetrics
    >>> m = SegmentationMetrics(num_classes=3, ignore_index=255)
    >>> target = torch.tensor([[0, 1, 2, 255]])
    >>> m.update(torch.tensor([[0, 1, 1, 0]]), target)
    >>> round(m.compute()["pixel_accuracy"], 4)
    0.6667
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch

from ._distributed import all_reduce_sum
from .batches import check_finite, class_labels

__all__ = [
    "ClassificationMetrics",
    "SegmentationMetrics",
    "accuracy",
    "confusion_matrix",
    "dice",
    "dice_per_class",
    "fwiou",
    "iou",
    "mean_accuracy",
    "miou",
    "pixel_accuracy",
    "segmentation_scores",
]

_NAN = float("nan")


# --------------------------------------------------------------------------------------------------------------
# confusion matrix
# --------------------------------------------------------------------------------------------------------------
def _to_labels(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Turn logits/probabilities ``(N, C, ...)`` into labels ``(N, ...)``; pass labels through. Non-finite scores
    are refused: ``argmax`` would turn NaN into a class and score it."""
    if pred.is_floating_point() or pred.is_complex():
        check_finite(pred, "metrics")
        if pred.dim() == target.dim() + 1:
            if pred.shape[1] == 1:
                if num_classes != 2:
                    raise ValueError(
                        f"a single-channel score map {tuple(pred.shape)} means binary logits, which needs "
                        f"num_classes=2 (got num_classes={num_classes})"
                    )
                return (pred[:, 0] > 0).long()
            if pred.shape[1] != num_classes:
                raise ValueError(
                    f"scores have {pred.shape[1]} channels (shape {tuple(pred.shape)}) but num_classes={num_classes}"
                )
            return class_labels(pred)
        raise ValueError(
            f"floating-point predictions of shape {tuple(pred.shape)} must be scores with a class axis at dim 1 "
            f"(target shape {tuple(target.shape)}); pass integer labels or (N, C, ...) logits"
        )
    if pred.dtype == torch.bool:
        return pred.long()
    return pred


def _check_shapes(pred: torch.Tensor, target: torch.Tensor) -> None:
    if target.is_floating_point():
        raise TypeError(f"target must hold integer class labels, got dtype {target.dtype}")
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}")


def _bincount_confusion(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: Optional[int], validate: bool
) -> torch.Tensor:
    """One bincount pass over ``target * C + pred`` with two extra bins (ignored, invalid)."""
    c = num_classes
    # compare in int64: uint8 targets would wrap Python ints (uint8(255) == -1 is True)
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long()
    valid = (t >= 0) & (t < c) & (p >= 0) & (p < c)
    index_dtype = torch.int32 if c * c + 2 < 2**31 else torch.int64
    idx = t.to(index_dtype) * c + p.to(index_dtype)
    idx = torch.where(valid, idx, torch.full_like(idx, c * c + 1))
    if ignore_index is not None:
        idx = torch.where(t == ignore_index, torch.full_like(idx, c * c), idx)
    counts = torch.bincount(idx, minlength=c * c + 2)
    if validate and int(counts[c * c + 1]) > 0:
        _raise_out_of_range(p, t, c, ignore_index)
    return counts[: c * c].reshape(c, c)


def _raise_out_of_range(p: torch.Tensor, t: torch.Tensor, c: int, ignore_index: Optional[int]) -> None:
    kept = torch.ones_like(t, dtype=torch.bool) if ignore_index is None else t != ignore_index
    bad_t = torch.unique(t[kept & ((t < 0) | (t >= c))]).tolist()
    bad_p = torch.unique(p[kept & ((p < 0) | (p >= c))]).tolist()
    valid = f"[0, {c})" + ("" if ignore_index is None else f" or the ignore label {ignore_index}")
    parts = []
    if bad_t:
        parts.append(f"target values {bad_t[:10]}")
    if bad_p:
        parts.append(f"predicted values {bad_p[:10]}")
    hint = ""
    if ignore_index is None and 255 in bad_t:
        hint = "; pass ignore_index=255 if 255 marks pixels to leave out (VOC object boundaries)"
    raise ValueError(f"{' and '.join(parts)} are outside the valid labels {valid} (num_classes={c}){hint}")


def confusion_matrix(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    validate: bool = True,
) -> torch.Tensor:
    """Confusion matrix of a prediction against a target, counted with one device-side ``bincount``.

    Args:
        pred: Integer labels with the shape of ``target``, or scores ``(N, C, ...)`` (argmax over dim 1; a single
            channel ``(N, 1, ...)`` is read as binary logits thresholded at 0).
        target: Integer labels ``(N, ...)``.
        num_classes: Number of classes ``C``.
        ignore_index: Target label whose pixels are not counted (any integer, e.g. 255 or -1).
        validate: Raise when a label lies outside ``[0, C)`` and is not the ignore label. Costs one small
            device-to-host copy; disable only for inputs already checked.

    Returns:
        An ``int64`` tensor ``(C, C)`` on the input's device; rows are targets, columns predictions.

    Raises:
        ValueError: On mismatched shapes or out-of-range labels (the message lists the offending values).

    Example:
        >>> import torch
        >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), num_classes=2)
        tensor([[1, 1],
                [0, 1]])
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    pred = _to_labels(pred, target, num_classes)
    _check_shapes(pred, target)
    return _bincount_confusion(pred, target, num_classes, ignore_index, validate)


# --------------------------------------------------------------------------------------------------------------
# scores from a confusion matrix
# --------------------------------------------------------------------------------------------------------------
def _divide(num: torch.Tensor, den: torch.Tensor, zero_division: float) -> torch.Tensor:
    out = num / den.clamp_min(1)
    return torch.where(den > 0, out, torch.full_like(out, zero_division))


def _nanmean(x: torch.Tensor) -> torch.Tensor:
    keep = ~torch.isnan(x)
    if not bool(keep.any()):
        return torch.tensor(_NAN, dtype=torch.float64)
    return x[keep].mean()


def _prepare(cm: torch.Tensor, ignore_index: Optional[int]) -> Tuple[torch.Tensor, Optional[int]]:
    cm = cm.detach().to("cpu", torch.float64)
    if cm.dim() != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix must be square (C, C), got shape {tuple(cm.shape)}")
    dropped = ignore_index if ignore_index is not None and 0 <= ignore_index < cm.shape[0] else None
    if dropped is not None:
        cm = cm.clone()
        cm[dropped] = 0
    return cm, dropped


def _per_class(cm: torch.Tensor, dropped: Optional[int], zero_division: float) -> Dict[str, torch.Tensor]:
    tp = cm.diagonal()
    t = cm.sum(dim=1)  # pixels of each target class
    p = cm.sum(dim=0)  # pixels predicted as each class
    scores = {
        "iou": _divide(tp, t + p - tp, zero_division),
        "dice": _divide(2 * tp, t + p, zero_division),
        "recall": _divide(tp, t, zero_division),
    }
    if dropped is not None:
        for v in scores.values():
            v[dropped] = _NAN
    return scores


def segmentation_scores(
    cm: torch.Tensor, ignore_index: Optional[int] = None, zero_division: float = _NAN
) -> Dict[str, Any]:
    """Every segmentation score from one confusion matrix.

    Args:
        cm: Confusion matrix ``(C, C)``, rows = target, columns = prediction.
        ignore_index: When it is a class index in ``[0, C)``, that class is scored NaN and left out of the means.
        zero_division: Score of a class whose score is ``0 / 0``; NaN leaves it out of the means.

    Returns:
        A dict of Python floats ``pixel_accuracy``, ``mean_accuracy``, ``miou``, ``fwiou``, ``dice`` (foreground
        Dice when ``C == 2``, else the mean Dice) and lists of floats ``iou``, ``dice_per_class``,
        ``accuracy_per_class``.

    Example:
        >>> import torch
        >>> s = segmentation_scores(torch.tensor([[3, 1], [0, 4]]))
        >>> s["pixel_accuracy"], s["iou"]
        (0.875, [0.75, 0.8])
    """
    cm, dropped = _prepare(cm, ignore_index)
    per = _per_class(cm, dropped, zero_division)
    total = cm.sum()
    t = cm.sum(dim=1)
    pixel_acc = float(cm.diagonal().sum() / total) if total > 0 else _NAN
    fw = float((t / total * per["iou"].nan_to_num(0.0)).sum()) if total > 0 else _NAN
    num_classes = cm.shape[0]
    if num_classes == 2 and dropped != 1:
        dice_value = float(per["dice"][1])
    else:
        dice_value = float(_nanmean(per["dice"]))
    return {
        "pixel_accuracy": pixel_acc,
        "mean_accuracy": float(_nanmean(per["recall"])),
        "miou": float(_nanmean(per["iou"])),
        "fwiou": fw,
        "dice": dice_value,
        "iou": per["iou"].tolist(),
        "dice_per_class": per["dice"].tolist(),
        "accuracy_per_class": per["recall"].tolist(),
    }


# --------------------------------------------------------------------------------------------------------------
# functional forms
# --------------------------------------------------------------------------------------------------------------
def _cm(pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: Optional[int]):
    return _prepare(confusion_matrix(pred, target, num_classes, ignore_index), ignore_index)


def pixel_accuracy(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: Optional[int] = None
) -> torch.Tensor:
    """Fraction of non-ignored pixels whose predicted label equals the target.

    Args:
        pred: Labels or ``(N, C, ...)`` scores (see ``confusion_matrix``).
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.

    Returns:
        A float64 scalar tensor (NaN when no pixel is counted).

    Example:
        >>> import torch
        >>> pixel_accuracy(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 255]), 2, ignore_index=255)
        tensor(1., dtype=torch.float64)
    """
    cm, _ = _cm(pred, target, num_classes, ignore_index)
    total = cm.sum()
    return cm.diagonal().sum() / total if total > 0 else torch.tensor(_NAN, dtype=torch.float64)


def mean_accuracy(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    zero_division: float = _NAN,
) -> torch.Tensor:
    """Mean over classes of the per-class accuracy (recall) ``TP / (pixels of that class)``.

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.
        zero_division: Score of a class absent from the target; NaN (default) leaves it out of the mean.

    Returns:
        A float64 scalar tensor.

    Example:
        >>> import torch
        >>> mean_accuracy(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
        tensor(0.8333, dtype=torch.float64)
    """
    cm, dropped = _cm(pred, target, num_classes, ignore_index)
    return _nanmean(_per_class(cm, dropped, zero_division)["recall"])


def iou(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    zero_division: float = _NAN,
) -> torch.Tensor:
    """Per-class intersection over union ``TP / (TP + FP + FN)``.

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.
        zero_division: Score of a class absent from both prediction and target (NaN by default).

    Returns:
        A float64 tensor ``(C,)``.

    Example:
        >>> import torch
        >>> iou(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3)
        tensor([0.5000, 0.6667,    nan], dtype=torch.float64)
    """
    cm, dropped = _cm(pred, target, num_classes, ignore_index)
    return _per_class(cm, dropped, zero_division)["iou"]


def miou(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    zero_division: float = _NAN,
) -> torch.Tensor:
    """Mean of the per-class IoU over the classes that have a score (NaN classes are left out).

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.
        zero_division: Score of a class absent from both prediction and target (NaN: left out of the mean).

    Returns:
        A float64 scalar tensor.

    Example:
        >>> import torch
        >>> miou(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 3)
        tensor(0.5833, dtype=torch.float64)
    """
    return _nanmean(iou(pred, target, num_classes, ignore_index, zero_division))


def fwiou(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: Optional[int] = None
) -> torch.Tensor:
    """Frequency-weighted IoU: per-class IoU weighted by each class's share of the target pixels.

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.

    Returns:
        A float64 scalar tensor.

    Example:
        >>> import torch
        >>> fwiou(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
        tensor(0.6250, dtype=torch.float64)
    """
    cm, dropped = _cm(pred, target, num_classes, ignore_index)
    total = cm.sum()
    if total == 0:
        return torch.tensor(_NAN, dtype=torch.float64)
    per = _per_class(cm, dropped, _NAN)["iou"].nan_to_num(0.0)
    return (cm.sum(dim=1) / total * per).sum()


def dice_per_class(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    zero_division: float = _NAN,
) -> torch.Tensor:
    """Per-class Dice ``2 TP / (2 TP + FP + FN)``, i.e. ``2 |A and B| / (|A| + |B|)``.

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.
        zero_division: Score of a class absent from both prediction and target (NaN by default).

    Returns:
        A float64 tensor ``(C,)``.

    Example:
        >>> import torch
        >>> dice_per_class(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
        tensor([0.6667, 0.8000], dtype=torch.float64)
    """
    cm, dropped = _cm(pred, target, num_classes, ignore_index)
    return _per_class(cm, dropped, zero_division)["dice"]


def dice(
    pred: torch.Tensor,
    target: torch.Tensor,
    num_classes: int,
    ignore_index: Optional[int] = None,
    zero_division: float = _NAN,
) -> torch.Tensor:
    """Dice score: the foreground (class 1) Dice for two classes, the mean per-class Dice otherwise.

    Args:
        pred: Labels or ``(N, C, ...)`` scores.
        target: Integer labels.
        num_classes: Number of classes.
        ignore_index: Target label left out of the count.
        zero_division: Score of a class absent from both prediction and target (NaN by default).

    Returns:
        A float64 scalar tensor.

    Example:
        >>> import torch
        >>> dice(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), 2)
        tensor(0.8000, dtype=torch.float64)
    """
    per = dice_per_class(pred, target, num_classes, ignore_index, zero_division)
    dropped = ignore_index if ignore_index is not None and 0 <= ignore_index < num_classes else None
    if num_classes == 2 and dropped != 1:
        return per[1]
    return _nanmean(per)


def _topk_correct(scores: torch.Tensor, target: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """Number of samples whose target is among the top-k scores, for each k (one ``topk`` call)."""
    check_finite(scores, "metrics")
    if scores.dim() != 2:
        raise ValueError(f"classification scores must be (N, C), got shape {tuple(scores.shape)}")
    if target.shape != scores.shape[:1]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match scores {tuple(scores.shape)}")
    kmax = max(ks)
    top = scores.topk(kmax, dim=1).indices
    hits = (top == target.reshape(-1, 1)).cumsum(dim=1)
    return torch.stack([hits[:, k - 1].sum() for k in ks])


def accuracy(
    logits: torch.Tensor, target: torch.Tensor, topk: Union[int, Sequence[int]] = 1
) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """Top-k classification accuracy.

    Args:
        logits: Scores ``(N, C)``, or integer labels ``(N,)`` for top-1.
        target: Integer labels ``(N,)``.
        topk: One ``k`` or a sequence of them (each ``<= C``).

    Returns:
        A float64 scalar tensor for one ``k``, a tuple of them for a sequence.

    Raises:
        ValueError: On mismatched shapes, ``k > C``, or ``k > 1`` with label predictions.

    Example:
        >>> import torch
        >>> logits = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05]])
        >>> accuracy(logits, torch.tensor([1, 1]), topk=(1, 2))
        (tensor(0.5000, dtype=torch.float64), tensor(1., dtype=torch.float64))
    """
    ks = (topk,) if isinstance(topk, int) else tuple(topk)
    n = target.numel()
    if not logits.is_floating_point():
        if any(k != 1 for k in ks):
            raise ValueError(f"top-k accuracy for k={ks} needs scores (N, C), got labels {tuple(logits.shape)}")
        if logits.shape != target.shape:
            raise ValueError(f"prediction shape {tuple(logits.shape)} does not match target {tuple(target.shape)}")
        correct = torch.stack([(logits == target).sum()])
    else:
        bad = [k for k in ks if not 1 <= k <= logits.shape[-1]]
        if bad:
            raise ValueError(f"topk {bad} is not in [1, {logits.shape[-1]}] (the number of classes)")
        correct = _topk_correct(logits, target, ks)
    values = correct.to("cpu", torch.float64) / n if n else torch.full((len(ks),), _NAN, dtype=torch.float64)
    out = tuple(values.unbind(0))
    return out[0] if isinstance(topk, int) else out


# --------------------------------------------------------------------------------------------------------------
# stateful accumulators
# --------------------------------------------------------------------------------------------------------------
class _Accumulator:
    """Local counts plus an optional all-reduced copy (so ``sync()`` never double counts)."""

    def __init__(self, shape: Tuple[int, ...], device: Optional[Union[str, torch.device]]) -> None:
        self._device = torch.device(device) if device is not None else None
        self._local = torch.zeros(shape, dtype=torch.int64, device=self._device or "cpu")
        self._synced: Optional[torch.Tensor] = None

    def _follow(self, device: torch.device) -> None:
        # Without an explicit device the counts live where the data lives (moved once, on first update).
        if self._device is None and self._local.device != device:
            self._local = self._local.to(device)

    def _add(self, counts: torch.Tensor) -> None:
        self._local += counts.to(self._local.device)
        self._synced = None

    @property
    def _state(self) -> torch.Tensor:
        return self._local if self._synced is None else self._synced

    def reset(self) -> None:
        """Zero all counts (local and synced).

        Example:
            >>> m = SegmentationMetrics(2); m.reset()
        """
        self._local.zero_()
        self._synced = None

    def sync(self) -> None:
        """Sum the counts over all processes under ``torch.distributed`` (a no-op when not initialised).

        The local counts are kept, so calling ``sync()`` again (or after more ``update`` calls) gives the
        correct totals. Every process must call it (it is a collective operation).

        Example:
            >>> m = SegmentationMetrics(2); m.sync()  # no-op outside torch.distributed
        """
        self._synced = all_reduce_sum(self._local.clone())


class SegmentationMetrics(_Accumulator):
    """Accumulates a confusion matrix over batches and reports every segmentation score from it.

    Args:
        num_classes: Number of classes ``C``.
        ignore_index: Target label left out of every count (any integer, e.g. 255); when it is a class index,
            that class is scored NaN and left out of the means.
        device: Where the counts live; by default they follow the first batch passed to ``update``.
        zero_division: Score of a class whose score is ``0 / 0`` (absent from target and prediction); NaN (the
            default) reports NaN for it and leaves it out of the means; 0.0 or 1.0 count it.
        validate: Raise on labels outside ``[0, C)`` that are not the ignore label (one small host copy per
            update).

    Attributes:
        confusion_matrix: ``(C, C)`` int64 counts, rows = target, columns = prediction (all processes after
            ``sync``).

    Example:
        >>> import torch
        >>> m = SegmentationMetrics(num_classes=2)
        >>> logits = torch.tensor([[[[2.0, -1.0]], [[0.0, 3.0]]]])  # (N=1, C=2, H=1, W=2)
        >>> m.update(logits, torch.tensor([[[0, 1]]]))
        >>> m.compute()["miou"]
        1.0
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: Optional[int] = None,
        device: Optional[Union[str, torch.device]] = None,
        zero_division: float = _NAN,
        validate: bool = True,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        super().__init__((num_classes, num_classes), device)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.zero_division = zero_division
        self.validate = validate

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """``(C, C)`` int64 counts, rows = target, columns = prediction."""
        return self._state

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch.

        Args:
            preds: Logits/probabilities ``(N, C, H, W)`` (argmax over classes), binary logits ``(N, 1, H, W)``
                when ``C == 2``, or integer labels ``(N, H, W)``.
            target: Integer labels ``(N, H, W)``.

        Raises:
            ValueError: On mismatched shapes or labels outside ``[0, C)`` that are not ``ignore_index``.

        Example:
            >>> import torch
            >>> m = SegmentationMetrics(3)
            >>> m.update(torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
        """
        labels = _to_labels(preds, target, self.num_classes)
        _check_shapes(labels, target)
        self._follow(target.device)
        cm = _bincount_confusion(labels, target, self.num_classes, self.ignore_index, self.validate)
        self._add(cm)

    def compute(self) -> Dict[str, Any]:
        """Scores of everything added so far (all processes after ``sync``).

        Returns:
            ``pixel_accuracy``, ``mean_accuracy``, ``miou``, ``fwiou``, ``dice`` as floats; ``iou``,
            ``dice_per_class`` and ``accuracy_per_class`` as lists of floats (NaN for classes without a score).

        Example:
            >>> import torch
            >>> m = SegmentationMetrics(2)
            >>> m.update(torch.tensor([[0, 1]]), torch.tensor([[0, 0]]))
            >>> m.compute()["pixel_accuracy"]
            0.5
        """
        return segmentation_scores(self._state, self.ignore_index, self.zero_division)

    def __repr__(self) -> str:
        return f"SegmentationMetrics(num_classes={self.num_classes}, ignore_index={self.ignore_index})"


class ClassificationMetrics(_Accumulator):
    """Accumulates top-1 / top-k hits and a confusion matrix over batches.

    Args:
        num_classes: Number of classes ``C``.
        topk: The ``k`` values to report; ``k > C`` are dropped (top-5 of a 3-class problem is meaningless).
        device: Where the counts live; by default they follow the first batch.

    Attributes:
        confusion_matrix: ``(C, C)`` int64 counts of top-1 predictions, rows = target.

    Example:
        >>> import torch
        >>> m = ClassificationMetrics(num_classes=10, topk=(1, 5))
        >>> m.update(torch.randn(4, 10), torch.tensor([1, 2, 3, 4]))
        >>> sorted(m.compute())
        ['accuracy', 'mean_accuracy', 'top5_accuracy']
    """

    def __init__(
        self,
        num_classes: int,
        topk: Sequence[int] = (1, 5),
        device: Optional[Union[str, torch.device]] = None,
    ) -> None:
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        ks = sorted({int(k) for k in topk} | {1})
        if ks[0] < 1:
            raise ValueError(f"topk values must be >= 1, got {tuple(topk)}")
        self.num_classes = num_classes
        self.topk = tuple(k for k in ks if k <= num_classes)
        # state layout: C*C confusion counts, then hits for each k>1, then the sample count
        super().__init__((num_classes * num_classes + len(self.topk),), device)

    @property
    def confusion_matrix(self) -> torch.Tensor:
        """``(C, C)`` int64 counts of top-1 predictions, rows = target, columns = prediction."""
        c = self.num_classes
        return self._state[: c * c].reshape(c, c)

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch.

        Args:
            logits: Scores ``(N, C)``, or integer labels ``(N,)`` when ``topk`` is ``(1,)``.
            target: Integer labels ``(N,)``.

        Raises:
            ValueError: On mismatched shapes, out-of-range labels, or labels given where top-k needs scores.

        Example:
            >>> import torch
            >>> m = ClassificationMetrics(3, topk=(1,))
            >>> m.update(torch.tensor([0, 2]), torch.tensor([0, 1]))
        """
        c = self.num_classes
        self._follow(target.device)
        if logits.is_floating_point():
            check_finite(logits, "metrics")
            if logits.dim() != 2 or logits.shape[1] != c:
                raise ValueError(f"scores must be (N, {c}), got shape {tuple(logits.shape)}")
            labels = logits.argmax(dim=1)
            extra = [k for k in self.topk if k > 1]
            hits = _topk_correct(logits, target, extra) if extra else logits.new_zeros(0, dtype=torch.int64)
        else:
            if len(self.topk) > 1:
                raise ValueError(
                    f"ClassificationMetrics(topk={self.topk}) got labels of shape {tuple(logits.shape)}; "
                    "top-k accuracy needs scores (N, C): pass logits or use topk=(1,)"
                )
            labels, hits = logits, logits.new_zeros(0, dtype=torch.int64)
        _check_shapes(labels, target)
        cm = _bincount_confusion(labels, target, c, None, True).reshape(-1)
        n = torch.tensor([target.numel()], device=cm.device, dtype=torch.int64)
        self._add(torch.cat([cm, hits.to(cm.device, torch.int64), n]))

    def compute(self) -> Dict[str, float]:
        """Accuracies of everything added so far.

        Returns:
            ``accuracy`` (top-1), ``top{k}_accuracy`` for each ``k > 1`` kept in ``topk``, and
            ``mean_accuracy`` (class-balanced top-1 accuracy over classes present in the targets).

        Example:
            >>> import torch
            >>> m = ClassificationMetrics(2, topk=(1,))
            >>> m.update(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
            >>> m.compute()["accuracy"]
            0.5
        """
        c = self.num_classes
        state = self._state.to("cpu", torch.float64)
        cm = state[: c * c].reshape(c, c)
        n = state[-1]
        out = {"accuracy": float(cm.diagonal().sum() / n) if n > 0 else _NAN}
        for k, hits in zip([k for k in self.topk if k > 1], state[c * c : -1].tolist()):
            out[f"top{k}_accuracy"] = hits / float(n) if n > 0 else _NAN
        out["mean_accuracy"] = float(_nanmean(_divide(cm.diagonal(), cm.sum(dim=1), _NAN)))
        return out

    def __repr__(self) -> str:
        return f"ClassificationMetrics(num_classes={self.num_classes}, topk={self.topk})"
