"""Optional TensorBoard logging for ``fit``: one scalar per number of each epoch's record."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Optional, Union

__all__ = ["open_writer", "write_record"]

#: Where ``fit(..., tensorboard=True)`` writes, inside ``checkpoint_dir``.
FOLDER = "tensorboard"


def open_writer(setting: Union[bool, str, Path, None], checkpoint_dir: Optional[Path], is_main: bool) -> Any:
    """A ``SummaryWriter`` for ``fit(tensorboard=...)`` on rank 0, or ``None``.

    Raises:
        ValueError: ``tensorboard=True`` without a ``checkpoint_dir`` to put the logs in.
        ImportError: The ``tensorboard`` package is missing (the message names the extra).
    """
    if setting is None or setting is False:
        return None
    if setting is True:
        if checkpoint_dir is None:
            raise ValueError("tensorboard=True writes into checkpoint_dir/tensorboard, so it needs checkpoint_dir=...; "
                             "or pass tensorboard=PATH")
        folder = checkpoint_dir / FOLDER
    else:
        folder = Path(setting)
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError("tensorboard logging needs the tensorboard package: pip install 'encdec[tensorboard]'"
                          ) from error
    return SummaryWriter(log_dir=str(folder)) if is_main else None


def write_record(writer: Any, record: Dict[str, Any]) -> None:
    """Every finite number of an epoch's record as a scalar at step ``epoch``."""
    if writer is None:
        return
    step = int(record["epoch"])
    for key, value in record.items():
        if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            writer.add_scalar(key, value, step)
    writer.flush()
