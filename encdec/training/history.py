"""``History``: the per-epoch record of a ``encdec.fit`` run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from .._json import jsonable
from ..atomic import atomic_write_json, atomic_write_text
from ..viz import plot_history

__all__ = ["History", "BOOKKEEPING"]

PathLike = Union[str, "os.PathLike[str]"]

#: Record keys that describe the run rather than the model (not plotted, not headline numbers).
BOOKKEEPING = ("epoch", "lr", "seconds", "train_seconds", "images_per_second")


class History:
    """Per-epoch record of a ``fit`` run: losses, metrics, learning rate, seconds and images/s.

    ``history.epochs`` is a list of dicts, one per epoch, with keys such as ``epoch``, ``lr``, ``train_loss``,
    ``train_miou``, ``val_loss``, ``val_miou``, ``seconds``, ``images_per_second`` (per-class metrics are lists).
    ``history["val_miou"]`` gives one key across epochs.

    Attributes:
        epochs: The per-epoch records.
        monitor: The monitored key (e.g. ``"val_miou"``), ``mode`` ``"max"`` or ``"min"``.
        best_epoch: 1-based epoch of the best monitored value, ``best_value`` that value.
        stopped_early: Whether early stopping ended the run.

    Example:
        >>> h = History(monitor="val_loss", mode="min")
        >>> h.append({"epoch": 1, "train_loss": 0.9, "val_loss": 0.8})
        >>> h.append({"epoch": 2, "train_loss": 0.5, "val_loss": 0.6})
        >>> h["val_loss"], len(h)
        ([0.8, 0.6], 2)
    """

    def __init__(self, monitor: Optional[str] = None, mode: Optional[str] = None) -> None:
        self.epochs: List[Dict[str, Any]] = []
        self.monitor = monitor
        self.mode = mode
        self.best_epoch: Optional[int] = None
        self.best_value: Optional[float] = None
        self.stopped_early = False

    def append(self, record: Dict[str, Any]) -> None:
        """Add one epoch's record.

        Example:
            >>> h = History(); h.append({"epoch": 1, "train_loss": 0.7}); len(h)
            1
        """
        self.epochs.append(dict(record))

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> List[Any]:
        if not any(key in record for record in self.epochs):
            raise KeyError(f"{key!r} is not in this history; keys: {', '.join(self.keys()) or '(empty)'}")
        return [record.get(key) for record in self.epochs]

    def keys(self) -> List[str]:
        """Every key that appears in some epoch's record, in first-seen order.

        Example:
            >>> h = History(); h.append({"epoch": 1, "train_loss": 1.0}); h.keys()
            ['epoch', 'train_loss']
        """
        seen: Dict[str, None] = {}
        for record in self.epochs:
            seen.update(dict.fromkeys(record))
        return list(seen)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-able dict (``from_dict`` reads it back).

        Example:
            >>> h = History(monitor="val_loss", mode="min"); h.append({"epoch": 1, "val_loss": 0.5})
            >>> History.from_dict(h.to_dict())["val_loss"]
            [0.5]
        """
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "stopped_early": self.stopped_early,
            "epochs": [dict(record) for record in self.epochs],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> History:
        """Rebuild a History from ``to_dict`` output.

        Example:
            >>> History.from_dict({"epochs": [{"epoch": 1, "train_loss": 2.0}]})["train_loss"]
            [2.0]
        """
        history = cls(data.get("monitor"), data.get("mode"))
        history.best_epoch = data.get("best_epoch")
        history.best_value = data.get("best_value")
        history.stopped_early = bool(data.get("stopped_early", False))
        for record in data.get("epochs", []):
            history.append(record)
        return history

    def save_json(self, path: PathLike) -> Path:
        """Write ``to_dict`` as JSON, atomically.

        Example:
            >>> import tempfile, json
            >>> h = History(); h.append({"epoch": 1, "train_loss": 0.3})
            >>> p = h.save_json(tempfile.mkdtemp() + "/history.json")
            >>> json.loads(p.read_text())["epochs"][0]["train_loss"]
            0.3
        """
        return atomic_write_json(jsonable(self.to_dict()), path)

    def to_csv(self) -> str:
        """One row per epoch, one column per number (per-class lists left out), as CSV text.

        Example:
            >>> h = History(); h.append({"epoch": 1, "train_loss": 0.5, "val_iou": [0.1, 0.2]})
            >>> print(h.to_csv().strip())
            epoch,train_loss
            1,0.5
        """
        columns = [k for k in self.keys()
                   if all(isinstance(r.get(k), (int, float, type(None))) and not isinstance(r.get(k), bool)
                          for r in self.epochs)]
        lines = [",".join(columns)]
        for record in self.epochs:
            lines.append(",".join("" if record.get(k) is None else repr(record[k]) for k in columns))
        return "\n".join(lines) + "\n"

    def save_csv(self, path: PathLike) -> Path:
        """Write ``to_csv`` atomically (``fit`` writes ``metrics.csv`` beside ``history.json``).

        Example:
            >>> import tempfile
            >>> h = History(); h.append({"epoch": 1, "train_loss": 0.25})
            >>> h.save_csv(tempfile.mkdtemp() + "/metrics.csv").read_text().splitlines()[1]
            '1,0.25'
        """
        return atomic_write_text(self.to_csv(), path)

    def plot(self, path: PathLike, *, dpi: int = 100) -> Path:
        """Draw the loss and metric curves (train and validation together) into one image file.

        One panel per quantity (``loss``, ``miou``, ...) drawn by ``encdec.viz.plot_history``, with the best
        epoch of the monitored value marked.

        Args:
            path: Image file to write; the format follows the suffix (``.png``, ``.svg``, ``.pdf``).
            dpi: Resolution for raster formats.

        Returns:
            The path written.

        Raises:
            ImportError: matplotlib is not installed (``pip install 'encdec[plot]'``).
            ValueError: The history is empty.

        Example:
            >>> import tempfile
            >>> h = History(); h.append({"epoch": 1, "train_loss": 1.0}); h.append({"epoch": 2, "train_loss": 0.5})
            >>> h.plot(tempfile.mkdtemp() + "/curves.png").suffix
            '.png'
        """
        if not self.epochs:
            raise ValueError("this History has no epochs to plot")
        series = [key for key in self.keys() if key not in BOOKKEEPING]
        path = Path(path)
        plot_history(self, path, keys=series, best=(self.monitor, self.best_epoch), dpi=dpi)
        return path

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float) and k not in BOOKKEEPING)
        return f"History(epochs={len(self)}, best_epoch={self.best_epoch}, last: {shown})"
