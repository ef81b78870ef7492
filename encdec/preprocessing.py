"""How a model's training prepared its images, as recorded with its weights (``encdec_config["preprocessing"]``,
written by ``encdec train`` through ``save_pretrained``), read in one place for ``predict`` and the command line;
and the checks a recorded normalisation and class list pass wherever they are read (``check_recorded_values``).

Example:
    >>> import torch
    >>> model = torch.nn.Conv2d(3, 2, 1)
    >>> model.encdec_config = {"preprocessing": {"size": [64, 64], "resize": "stretch"}}
    >>> recorded_size(model), resize_policy(model)
    (64, 'stretch')
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional

__all__ = ["recorded_preprocessing", "recorded_size", "resize_policy", "check_recorded_values"]


def recorded_preprocessing(model: Any) -> Dict[str, Any]:
    """The model's recorded preprocessing, or ``{}`` when none (or a malformed one) is recorded.

    Example:
        >>> import torch
        >>> recorded_preprocessing(torch.nn.Conv2d(3, 2, 1))
        {}
    """
    record = (getattr(model, "encdec_config", None) or {}).get("preprocessing")
    return record if isinstance(record, dict) else {}


def recorded_size(model: Any) -> Optional[int]:
    """The square side the model was trained at, or ``None`` when unknown.

    Example:
        >>> import torch
        >>> recorded_size(torch.nn.Conv2d(3, 2, 1)) is None
        True
    """
    size = recorded_preprocessing(model).get("size")
    if isinstance(size, (list, tuple)) and size and isinstance(size[0], int) and size[0] > 0:
        return int(size[0])
    return None


def resize_policy(model: Any) -> str:
    """How training brought images to that size: ``"stretch"`` (the default), ``"shorter-side+center-crop"`` or
    ``"none"``.

    Example:
        >>> import torch
        >>> resize_policy(torch.nn.Conv2d(3, 2, 1))
        'stretch'
    """
    return str(recorded_preprocessing(model).get("resize", "stretch"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_recorded_values(record: Mapping[str, Any], bad: Callable[[str, str, Any], Exception]) -> None:
    """The checks of ``mean``, ``std`` and ``class_names`` that a saved config (``validate_config``) and an ONNX
    file's metadata (``encdec.OnnxPredictor``) share: ``mean`` and ``std`` lists of 1 to 4 finite numbers of the
    same length, ``std`` positive, ``class_names`` a list of strings. ``bad(key, what_is_valid, value)`` makes
    the error raised.

    Example:
        >>> try:
        ...     check_recorded_values({"mean": "abc"}, lambda key, what, value: ValueError(f"{key} must be {what}"))
        ... except ValueError as error:
        ...     print(error)
        mean must be a list of 1 to 4 finite numbers (one per image channel)
    """
    for key in ("mean", "std"):
        if key in record:
            value = record[key]
            if not isinstance(value, list) or not 1 <= len(value) <= 4 or not all(_is_number(v) for v in value):
                raise bad(key, "a list of 1 to 4 finite numbers (one per image channel)", value)
            if key == "std" and not all(v > 0 for v in value):
                raise bad(key, "positive numbers (a standard deviation divides the images)", value)
    if "mean" in record and "std" in record and len(record["mean"]) != len(record["std"]):
        raise bad("std", f"as long as 'mean' ({len(record['mean'])} values)", record["std"])
    names = record.get("class_names")
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
        raise bad("class_names", "a list of strings, one per class", names)
