"""What ``fit`` prints: tqdm bars on a terminal, one line per epoch elsewhere, only on rank 0."""

from __future__ import annotations

import sys
from typing import Any, Dict, Optional

from tqdm.auto import tqdm

from .._distributed import DistInfo
from .history import BOOKKEEPING

__all__ = ["bar", "format_record", "log"]

_HEADLINE = ("loss", "miou", "dice", "accuracy", "top5_accuracy")


def bar(total: Optional[int], desc: str, enabled: bool, leave: bool) -> Any:
    """A tqdm bar on standard error, or ``None`` when bars are off."""
    if not enabled:
        return None
    return tqdm(total=total, desc=desc, leave=leave, dynamic_ncols=True, file=sys.stderr)


def log(info: DistInfo, progress: bool, line: str) -> None:
    """Print ``line`` to standard error on rank 0 when progress output is on."""
    if progress and info.is_main:
        print(line, file=sys.stderr, flush=True)


def format_record(record: Dict[str, Any], epochs: int, monitor: Optional[str] = None) -> str:
    """One epoch's record as one line: the headline losses and metrics, learning rate, time and images/s.

    Example:
        >>> format_record({"epoch": 1, "lr": 0.001, "train_loss": 0.5, "seconds": 2.0, "images_per_second": 8.0}, 3)
        'epoch 1/3  train_loss 0.5000  lr 0.001  2.0s  8.0 img/s'
    """
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        headline = key.split("_", 1)[-1] in _HEADLINE or key == monitor
        if key in BOOKKEEPING or not isinstance(value, float) or not headline:
            continue
        parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['seconds']:.1f}s")
    parts.append(f"{record['images_per_second']:.1f} img/s")
    return "  ".join(parts)
