"""What ``fit`` prints: tqdm bars on a terminal; elsewhere (a log file, a batch job) one line per epoch and, within
long epochs, a progress line every ``PROGRESS_SECONDS`` with images/s and the time left; only on rank 0."""

from __future__ import annotations

import sys
import time
from typing import Any, Dict, Optional

from tqdm.auto import tqdm

from .._distributed import DistInfo
from .history import BOOKKEEPING

__all__ = ["PROGRESS_SECONDS", "ProgressLines", "bar", "format_duration", "format_record", "log"]

#: Seconds between two progress lines within an epoch when standard error is not a terminal.
PROGRESS_SECONDS = 30.0

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


def format_duration(seconds: float) -> str:
    """``3725`` -> ``'1h02m05s'``, ``65`` -> ``'1m05s'``, ``4.2`` -> ``'4s'``.

    Example:
        >>> format_duration(3725), format_duration(65), format_duration(4.2)
        ('1h02m05s', '1m05s', '4s')
    """
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLines:
    """Progress within an epoch as plain lines, for logs: at most one every ``every`` seconds.

    Example:
        >>> lines = ProgressLines("epoch 1/3", total=100, every=0.0, stream=sys.stdout)
        >>> lines.update(10, images=80, loss=0.5)  # doctest: +ELLIPSIS
        epoch 1/3  batch 10/100  loss 0.5000  ... img/s  ETA ...
    """

    def __init__(self, label: str, total: Optional[int], every: Optional[float] = None, stream: Any = None) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.every = PROGRESS_SECONDS if every is None else every
        self.started = self.last = time.perf_counter()

    def update(self, batches: int, images: int, loss: Any) -> None:
        """Print a line if ``every`` seconds have passed since the last one (``batches`` done so far; ``loss`` a
        number or a tensor, read only when a line is printed)."""
        now = time.perf_counter()
        if now - self.last < self.every or (self.total is not None and batches >= self.total):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        of = f"/{self.total}" if self.total is not None else ""
        line = f"{self.label}  batch {batches}{of}  loss {float(loss):.4f}  {images / elapsed:.1f} img/s"
        if self.total is not None:
            line += f"  ETA {format_duration(elapsed / batches * (self.total - batches))}"
        print(line, file=self.stream or sys.stderr, flush=True)
