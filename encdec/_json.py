"""One conversion of Python, NumPy and torch values into JSON-able values, shared by every writer of JSON."""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any, *, finite: bool = False) -> Any:
    """``value`` with tuples as lists, paths as strings, NumPy/torch scalars as numbers, anything else as its repr.

    Args:
        value: A number, string, ``None``, path, mapping, sequence, NumPy or torch scalar, or any object.
        finite: Replace NaN and infinite floats by ``None`` (strict JSON has no NaN).

    Example:
        >>> from pathlib import Path
        >>> jsonable({"a": (1, 2), "p": Path("x"), "n": float("nan")}, finite=True)
        {'a': [1, 2], 'p': 'x', 'n': None}
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if finite and not math.isfinite(value) else value
    if isinstance(value, dict):
        return {str(k): jsonable(v, finite=finite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, finite=finite) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    item = getattr(value, "item", None)  # NumPy and torch scalars
    if callable(item) and getattr(value, "ndim", None) == 0:
        return jsonable(item(), finite=finite)
    return repr(value)
