"""How a model's training prepared its images, as recorded with its weights (``encdec_config["preprocessing"]``,
written by ``encdec train`` through ``save_pretrained``), read in one place for ``predict`` and the command line.

Example:
    >>> import torch
    >>> model = torch.nn.Conv2d(3, 2, 1)
    >>> model.encdec_config = {"preprocessing": {"size": [64, 64], "resize": "stretch"}}
    >>> recorded_size(model), resize_policy(model)
    (64, 'stretch')
"""

from __future__ import annotations

from typing import Any, Dict, Optional

__all__ = ["recorded_preprocessing", "recorded_size", "resize_policy"]


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
