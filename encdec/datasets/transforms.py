"""Paired image/mask transforms: the little that ``torchvision.transforms.v2`` does not already do.

``torchvision.transforms.v2`` draws one set of random parameters per call and applies it to every input, and it
resamples ``tv_tensors.Mask`` inputs with nearest neighbour while ``ToDtype``/``Normalize`` leave masks alone.
So a v2 pipeline called as ``pipeline(image, mask)`` already is a correct paired transform, provided the mask
is wrapped as a ``tv_tensors.Mask``. ``apply_paired`` does that wrapping, unwraps the results to plain
tensors, and refuses pipelines that turn a mask into floats (which would blur labels). Every dataset of
``encdec.datasets`` calls its ``transforms`` through it.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Tuple

import torch
from torchvision import tv_tensors

__all__ = ["apply_paired", "denormalize", "wrap_image", "wrap_mask"]


def wrap_image(image: torch.Tensor) -> tv_tensors.Image:
    """Mark a ``(C, H, W)`` tensor as an image for ``torchvision.transforms.v2``.

    Args:
        image: Image tensor ``(C, H, W)`` (uint8 or float).

    Returns:
        The same data as a ``tv_tensors.Image``.

    Example:
        >>> import torch
        >>> type(wrap_image(torch.zeros(3, 4, 4))).__name__
        'Image'
    """
    return image if isinstance(image, tv_tensors.Image) else tv_tensors.Image(image)


def wrap_mask(mask: torch.Tensor) -> tv_tensors.Mask:
    """Mark a ``(H, W)`` label tensor as a mask, so v2 transforms resample it with nearest neighbour only.

    Args:
        mask: Integer label tensor ``(H, W)``.

    Returns:
        The same data as a ``tv_tensors.Mask``.

    Example:
        >>> import torch
        >>> type(wrap_mask(torch.zeros(4, 4, dtype=torch.long))).__name__
        'Mask'
    """
    return mask if isinstance(mask, tv_tensors.Mask) else tv_tensors.Mask(mask)


def _as_plain_tensor(t: Any) -> Any:
    return t.as_subclass(torch.Tensor) if isinstance(t, torch.Tensor) else t


def apply_paired(
    transform: Optional[Callable[..., Any]], image: torch.Tensor, mask: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Apply one joint transform to an image and its mask, with one random draw for both.

    Args:
        transform: A callable taking and returning ``(image, mask)``, typically a ``torchvision.transforms.v2``
            pipeline; ``None`` returns the inputs unchanged.
        image: Image tensor ``(C, H, W)``.
        mask: Integer label tensor ``(H, W)``.

    Returns:
        ``(image, mask)`` as plain tensors, the mask as int64.

    Raises:
        TypeError: If the transform does not return a pair, or returns a floating-point mask (masks must never
            be interpolated or rescaled).

    Example:
        >>> import torch
        >>> from torchvision.transforms import v2
        >>> image, mask = torch.rand(3, 8, 8), torch.randint(0, 3, (8, 8))
        >>> out_image, out_mask = apply_paired(v2.RandomHorizontalFlip(p=1.0), image, mask)
        >>> torch.equal(out_mask, mask.flip(-1)), out_mask.dtype
        (True, torch.int64)
    """
    if transform is None:
        return _as_plain_tensor(image), _as_plain_tensor(mask).long()
    out = transform(wrap_image(image), wrap_mask(mask))
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError(
            f"a paired transform must take and return (image, mask); {transform!r} returned {type(out).__name__}. "
            "Use a torchvision.transforms.v2 pipeline (e.g. encdec.datasets.presets.segmentation_eval) or a "
            "callable f(image, mask) -> (image, mask)"
        )
    new_image, new_mask = out
    if not isinstance(new_mask, torch.Tensor) or new_mask.is_floating_point():
        raise TypeError(
            f"transform {transform!r} turned the mask into {getattr(new_mask, 'dtype', type(new_mask))}; masks "
            "must stay integer labels (wrap them as tv_tensors.Mask and do not apply ToDtype/Normalize to them)"
        )
    return _as_plain_tensor(new_image), _as_plain_tensor(new_mask).long()


def denormalize(image: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo ``Normalize(mean, std)``: ``image * std + mean`` per channel (``(C, H, W)`` or ``(N, C, H, W)``).

    Args:
        image: Normalised float image(s).
        mean: Per-channel mean used for normalisation.
        std: Per-channel standard deviation used for normalisation.

    Returns:
        The image(s) in the original value range (typically ``[0, 1]``).

    Example:
        >>> import torch
        >>> denormalize(torch.zeros(3, 1, 1), (0.5, 0.5, 0.5), (0.2, 0.2, 0.2)).flatten().tolist()
        [0.5, 0.5, 0.5]
    """
    m = torch.as_tensor(mean, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=image.dtype, device=image.device).view(-1, 1, 1)
    return image * s + m
