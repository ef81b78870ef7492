"""Tensor layouts of checkpoints: refuse views that show more values than a file stores, before any value is read."""

from __future__ import annotations

from typing import Any, Dict, Mapping

import torch

from .errors import WeightsError, shorten

__all__ = ["check_layouts"]

# A storage may hold more bytes than the tensors in it use (a file saved from slices of a larger buffer), but not
# arbitrarily more: beyond this factor plus _STORAGE_SLACK bytes, most of the file is bytes no tensor reads.
_STORAGE_EXCESS = 16
_STORAGE_SLACK = 16 * 1024 * 1024


def check_layouts(state: Mapping[str, Any], source: str) -> None:
    """Refuse tensors whose strides and storage do not describe values stored once each, before anything reads
    their values.

    A checkpoint's tensor is a view: a storage, an offset, a shape and strides. A hostile file can make a few bytes
    look like gigabytes (``torch.zeros(1).expand(1 << 15, 1 << 15)``: stride 0, one value shown a billion times),
    and any check that reads the values (finite? plausible?) would then materialise them. Refused here, naming
    the key: a stride of 0 along a dimension longer than 1 (an expanded view), strides that make elements overlap,
    a view that reaches past its storage, and a storage many times larger than the tensors stored in it use.

    Args:
        state: Names and tensors (non-tensor values are left to the caller's checks).
        source: The file, for messages.

    Raises:
        WeightsError: Naming the key and what is wrong with its layout.

    Example:
        >>> check_layouts({"w": torch.zeros(2, 3)}, "m.pth")
        >>> try:
        ...     check_layouts({"w": torch.zeros(1).expand(4, 4)}, "m.pth")
        ... except WeightsError as error:
        ...     print(str(error).split(": ", 1)[1][:60])
        tensor 'w' of shape [4, 4] is an expanded view (stride 0 alo
    """
    need: Dict[Any, int] = {}
    owners: Dict[Any, str] = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided or value.is_nested \
                or value.device.type == "meta":
            continue
        storage = value.untyped_storage()
        width = value.element_size()
        where = f"{source}: tensor {shorten(repr(key))} of shape {list(value.shape)}"
        if value.numel():
            _check_strides(value, where)
            last = value.storage_offset() + sum((n - 1) * s for n, s in zip(value.shape, value.stride()))
            if (last + 1) * width > storage.nbytes():
                raise WeightsError(f"{where} reaches element {last} of a storage of {storage.nbytes() // width} "
                                   "elements; the file is damaged or hostile")
        ident = (storage.data_ptr(), storage.nbytes())
        need[ident] = need.get(ident, 0) + value.numel() * width
        owners.setdefault(ident, where)
    for ident, used in need.items():
        held = ident[1]
        if held > _STORAGE_EXCESS * used + _STORAGE_SLACK:
            raise WeightsError(f"{owners[ident]} is stored in a storage of {held} bytes, of which the tensors "
                               f"stored there use {used}; refused (a damaged or hostile file)")


def _check_strides(value: torch.Tensor, where: str) -> None:
    """Refuse a view that shows one stored element at several positions (stride 0 or overlapping strides)."""
    dims = sorted((stride, size, dim) for dim, (size, stride) in enumerate(zip(value.shape, value.stride()))
                  if size > 1)
    reach = 1  # elements spanned by the dimensions of smaller strides
    for stride, size, dim in dims:
        if stride == 0:
            raise WeightsError(f"{where} is an expanded view (stride 0 along dimension {dim} of size {size}): it "
                               f"stores fewer values than it shows; checkpoints store every value once")
        if stride < reach:
            raise WeightsError(f"{where} has overlapping strides {list(value.stride())}: it shows some stored "
                               "values at several positions; checkpoints store every value once")
        reach = stride * size
