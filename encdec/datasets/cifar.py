"""CIFAR-10 from the official python pickle batches, read without executing pickled code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ._base import resolve_root

__all__ = ["CIFAR10", "CIFAR10_CLASSES"]

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

# The only globals a CIFAR batch pickle needs (a numpy array inside a dict); anything else is refused.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a CIFAR batch")


def _load_batch(path: Path) -> Dict[str, Any]:
    """One batch file as a dict with str keys (official files were pickled by Python 2)."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-10 batch file not found: {path}")
    try:
        with open(path, "rb") as f:
            entry = _SafeUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as e:
        raise ValueError(f"cannot read CIFAR-10 batch {path}: {e}") from e
    if not isinstance(entry, dict):
        raise ValueError(f"CIFAR-10 batch {path} holds a {type(entry).__name__}, expected a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


class CIFAR10(Dataset):
    """CIFAR-10 from ``cifar-10-batches-py`` (``data_batch_1`` ... ``data_batch_5``, ``test_batch``).

    The batches are loaded into memory once (180 MB for the training set). Items are ``(image, label)``: a
    uint8 image tensor ``(3, 32, 32)`` (or ``transform(image)``) and an int label. The pickles are read with a
    restricted unpickler that only rebuilds numpy arrays, so a tampered file cannot run code.

    Args:
        root: The ``cifar-10-batches-py`` folder or its parent (torchvision's layout).
        train: Training batches 1-5 (50,000 images) or the test batch (10,000).
        transform: Applied to the image tensor, e.g. ``encdec.datasets.presets.cifar_train`` (the reference
            RandomCrop(32, padding=4) + flip + normalisation).

    Attributes:
        data: uint8 array ``(N, 32, 32, 3)``.
        targets: Labels, a list of ints.
        num_classes: 10.
        class_names: From ``batches.meta`` when present, else the standard names.
        ignore_index: ``None``.

    Raises:
        FileNotFoundError: A missing folder or batch file (named).
        ValueError: A batch that is not a CIFAR pickle, or has the wrong keys or shapes.

    Example:
        >>> from encdec.datasets import CIFAR10, presets  # doctest: +SKIP
        >>> train = CIFAR10("data", train=True, transform=presets.cifar_train())  # doctest: +SKIP
        >>> image, label = train[0]  # doctest: +SKIP
    """

    num_classes = 10
    ignore_index: Optional[int] = None

    def __init__(self, root: Any, train: bool = True, transform: Optional[Callable[..., Any]] = None) -> None:
        marker = "data_batch_1" if train else "test_batch"
        self.root = resolve_root(root, ["", "cifar-10-batches-py"], marker, "CIFAR-10 python batches")
        self.train = train
        self.transform = transform
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        data: List[np.ndarray] = []
        targets: List[int] = []
        for name in names:
            entry = _load_batch(self.root / name)
            images, labels = entry.get("data"), entry.get("labels", entry.get("fine_labels"))
            if images is None or labels is None:
                raise ValueError(
                    f"CIFAR-10 batch {self.root / name} lacks the 'data'/'labels' keys (has {sorted(entry)})"
                )
            images = np.asarray(images, dtype=np.uint8)
            if images.ndim != 2 or images.shape[1] != 3072 or len(labels) != images.shape[0]:
                raise ValueError(
                    f"CIFAR-10 batch {self.root / name}: data {images.shape} with {len(labels)} labels; expected "
                    "(N, 3072) uint8 rows and N labels"
                )
            bad = sorted({int(y) for y in labels if not 0 <= int(y) < 10})
            if bad:
                raise ValueError(f"CIFAR-10 batch {self.root / name} holds labels {bad} outside [0, 10)")
            data.append(images.reshape(-1, 3, 32, 32))
            targets.extend(int(y) for y in labels)
        self.data = np.ascontiguousarray(np.concatenate(data).transpose(0, 2, 3, 1))
        self.targets = targets
        self.class_names = self._read_names()

    def _read_names(self) -> List[str]:
        meta = self.root / "batches.meta"
        if meta.is_file():
            names = _load_batch(meta).get("label_names")
            if isinstance(names, list) and len(names) == 10:
                return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        return list(CIFAR10_CLASSES)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        image: Any = torch.from_numpy(self.data[index]).permute(2, 0, 1).contiguous()
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def __repr__(self) -> str:
        return f"CIFAR10(train={self.train}, {len(self)} images)"
