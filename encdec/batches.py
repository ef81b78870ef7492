"""The batch contract of ``encdec.fit``, ``encdec.evaluate`` and ``encdec.predict``: what a data loader
may yield and a model may return, checked before any loss or metric sees it, with errors that name the batch and
the fix instead of torch's own.

A batch is ``(images, targets)``, a ``{"image": ..., "mask": ...}`` dict (also ``"label"`` / ``"target"``), or the
torchvision ``tv_tensors`` of either. Images are floating point ``(N, C, H, W)``; integer images are refused (scale
them first). Segmentation targets are integer ``(N, H, W)`` of any width (cast to int64; ``(N, 1, H, W)`` is
squeezed; float masks are refused), classification targets integer ``(N,)``. A model may return logits, a
``{"out": logits, "aux": ...}`` dict (torchvision's segmentation models) or a tuple whose first element is the
logits.

Example:
    >>> import torch
    >>> from encdec.batches import split_batch, check_targets
    >>> batch = {"image": torch.zeros(2, 3, 4, 4), "mask": torch.zeros(2, 1, 4, 4, dtype=torch.uint8)}
    >>> images, masks = split_batch(batch)
    >>> check_targets(masks, images, "batch 1").shape, check_targets(masks, images, "batch 1").dtype
    (torch.Size([2, 4, 4]), torch.int64)
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["NonFiniteError", "check_finite", "class_probabilities", "check_images", "check_labels",
           "check_target_shape", "check_targets", "class_labels", "logits_of", "split_batch"]

_IMAGE_KEYS = ("image", "images", "input", "inputs", "pixel_values")
_TARGET_KEYS = ("mask", "masks", "label", "labels", "target", "targets")


class NonFiniteError(FloatingPointError):
    """A model produced NaN or infinite outputs, so its scores or predictions would mean nothing.

    Example:
        >>> issubclass(NonFiniteError, FloatingPointError)
        True
    """


def _plain(t: Any) -> Any:
    """A torchvision ``tv_tensors`` object as a plain tensor (other values unchanged)."""
    return t.as_subclass(Tensor) if isinstance(t, Tensor) and type(t) is not Tensor else t


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))[:8]}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items ({', '.join(type(v).__name__ for v in value[:4])})"
    return f"a {type(value).__name__}"


def split_batch(batch: Any, where: str = "batch") -> Tuple[Tensor, Tensor]:
    """``(images, targets)`` from a tuple, list or dict batch.

    Raises:
        TypeError: The batch has another form; the message says what came and what would do.

    Example:
        >>> images, labels = split_batch([torch.zeros(2, 3, 8, 8), torch.tensor([0, 1])])
        >>> labels.tolist()
        [0, 1]
    """
    if isinstance(batch, Mapping):
        image_key = next((k for k in _IMAGE_KEYS if k in batch), None)
        target_key = next((k for k in _TARGET_KEYS if k in batch), None)
        if image_key is None or target_key is None:
            raise TypeError(f"{where} is {_describe(batch)}; a dict batch needs an image key "
                            f"({', '.join(_IMAGE_KEYS)}) and a target key ({', '.join(_TARGET_KEYS)})")
        return _plain(batch[image_key]), _plain(batch[target_key])
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _plain(batch[0]), _plain(batch[1])
    raise TypeError(f"{where} is {_describe(batch)}; the loader must yield (images, targets) pairs or "
                    '{"image": ..., "mask": ...} dicts (wrap a dataset that returns more in one that returns two)')


def check_images(images: Any, where: str = "batch") -> Tensor:
    """Floating-point images ``(N, ...)`` as float32; anything else refused with the fix.

    Example:
        >>> check_images(torch.zeros(1, 3, 4, 4, dtype=torch.float64)).dtype
        torch.float32
    """
    if not isinstance(images, Tensor):
        raise TypeError(f"{where}: images are {_describe(images)}, not a tensor; give the dataset a transform that "
                        "returns tensors (e.g. torchvision.transforms.v2.ToImage + ToDtype)")
    if not images.is_floating_point():
        raise TypeError(f"{where}: images are {images.dtype}; models take floating-point images: scale them with "
                        "x.float() / 255 (and normalise) in the dataset's transform")
    if images.dim() < 2:
        raise ValueError(f"{where}: images have shape {tuple(images.shape)}; expected a batch (N, C, H, W)")
    return images if images.dtype == torch.float32 else images.float()


def check_targets(targets: Any, images: Tensor, where: str = "batch") -> Tensor:
    """Integer class targets as int64, ``(N, 1, H, W)`` squeezed to ``(N, H, W)``, with the images' batch size.

    Raises:
        TypeError: Float or non-tensor targets.
        ValueError: A batch size that differs from the images'.

    Example:
        >>> check_targets(torch.tensor([True, False]), torch.zeros(2, 3, 8, 8)).tolist()
        [1, 0]
    """
    if not isinstance(targets, Tensor):
        raise TypeError(f"{where}: targets are {_describe(targets)}, not a tensor of class indices")
    if targets.is_floating_point() or targets.is_complex():
        raise TypeError(f"{where}: targets are {targets.dtype}; targets are class indices: read masks as integers "
                        "(a float mask is usually a mask converted with ToTensor, which divides by 255)")
    if targets.dim() == 4 and targets.shape[1] == 1:
        targets = targets[:, 0]
    if targets.shape[:1] != images.shape[:1]:
        raise ValueError(f"{where}: {images.shape[0]} images but {targets.shape[0] if targets.dim() else 1} targets "
                         f"(images {tuple(images.shape)}, targets {tuple(targets.shape)})")
    return targets.long()


def logits_of(output: Any, where: str = "batch") -> Tensor:
    """The logits in a model's output: the tensor itself, ``output["out"]``, or the first element of a tuple.

    Example:
        >>> logits_of({"out": torch.zeros(1, 2), "aux": torch.zeros(1, 2)}).shape
        torch.Size([1, 2])
    """
    if isinstance(output, Tensor):
        return _plain(output)
    if isinstance(output, Mapping) and isinstance(output.get("out"), Tensor):
        return _plain(output["out"])
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return _plain(output[0])
    raise TypeError(f"{where}: the model returned {_describe(output)}; expected logits, a dict with the logits under "
                    '"out", or a tuple whose first element is the logits')


def check_target_shape(targets: Tensor, logits: Tensor, where: str = "batch") -> Tensor:
    """Targets shaped like the logits without their class axis: ``(N,)`` for ``(N, C)`` logits (an ``(N, 1)``
    column is flattened), ``(N, H, W)`` for ``(N, C, H, W)``.

    Raises:
        ValueError: The shapes disagree (e.g. masks resized differently from their images), naming both.

    Example:
        >>> check_target_shape(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 10)).shape
        torch.Size([4])
    """
    if logits.dim() == 2 and targets.dim() == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]
    expected = (logits.shape[0], *logits.shape[2:])
    if tuple(targets.shape) != expected:
        raise ValueError(f"{where}: targets of shape {tuple(targets.shape)} for logits of shape {tuple(logits.shape)}; "
                         f"expected targets {expected} (were the masks resized differently from the images?)")
    return targets


def check_labels(targets: Tensor, num_classes: int, ignore_index: Optional[int], where: str = "batch") -> None:
    """Raise ``ValueError`` naming the target values outside ``[0, num_classes)`` that are not the ignore label.

    Example:
        >>> try:
        ...     check_labels(torch.tensor([0, 7, 255]), 3, 255, "batch 2")
        ... except ValueError as error:
        ...     print(str(error).split(";")[0])
        batch 2: target values [7] are not classes of this 3-output model
    """
    kept = targets if ignore_index is None else targets[targets != ignore_index]
    if kept.numel() == 0:
        return
    low, high = torch.aminmax(kept)
    if int(low) >= 0 and int(high) < num_classes:
        return
    bad = torch.unique(kept[(kept < 0) | (kept >= num_classes)]).tolist()
    ignore = ("no ignore label" if ignore_index is None else "or -100, which cross entropy skips"
              if ignore_index == -100 else f"the ignore label is {ignore_index}")
    hint = " (255 marks VOC object boundaries: give the dataset ignore_index=255)" if 255 in bad else ""
    raise ValueError(f"{where}: target values {bad[:10]} are not classes of this {num_classes}-output model; valid "
                     f"labels are 0..{num_classes - 1} ({ignore}){hint}; build the model with num_classes= the "
                     "dataset's number of classes, or fix the masks")


def check_finite(logits: Tensor, where: str = "batch") -> None:
    """Raise ``NonFiniteError`` when ``logits`` hold NaN or infinite values.

    Example:
        >>> try:
        ...     check_finite(torch.tensor([1.0, float("nan")]), "batch 3")
        ... except NonFiniteError as error:
        ...     print(str(error).split(";")[0])
        batch 3: the model's outputs hold 1 NaN or infinite values out of 2
    """
    finite = torch.isfinite(logits)
    if bool(finite.all()):
        return
    bad = int((~finite).sum())
    raise NonFiniteError(f"{where}: the model's outputs hold {bad} NaN or infinite values out of {logits.numel()}; "
                         "the weights or the inputs are broken (a NaN image, weights from a diverged run)")


def class_probabilities(logits: Tensor, activation: Optional[str] = None) -> Tensor:
    """Scores in ``[0, 1]`` from logits ``(N, C, ...)``: a sigmoid per output for ``activation="sigmoid"`` and for
    one-output (binary) models, else a softmax over the classes (``None``, ``"softmax"``, ``"softmax2d"``).

    Example:
        >>> class_probabilities(torch.zeros(1, 2, 1, 1)).flatten().tolist()
        [0.5, 0.5]
        >>> class_probabilities(torch.zeros(1, 2, 1, 1), "sigmoid").flatten().tolist()
        [0.5, 0.5]
        >>> class_probabilities(torch.full((1, 1, 1, 1), 20.0)).item() > 0.99
        True
    """
    if activation == "sigmoid" or logits.shape[1] == 1:
        return logits.sigmoid()
    return logits.softmax(dim=1)


def class_labels(scores: Tensor) -> Tensor:
    """The class of each position: the index of the largest score over dim 1 (the first one on ties).

    The same result as ``scores.argmax(dim=1)``, computed with ``max``: for ``(N, C, H, W)`` scores torch's
    ``argmax`` over a non-innermost dimension is an order of magnitude slower (33 ms against 2 ms for
    ``2 x 6 x 256 x 256`` floats on a 2-core CPU), which was a visible share of a prediction.

    Example:
        >>> class_labels(torch.tensor([[[[0.1]], [[0.7]], [[0.7]]]])).tolist()
        [[[1]]]
    """
    return scores.max(dim=1).indices
