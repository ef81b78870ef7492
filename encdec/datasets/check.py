"""Check a dataset before training on it: every sample (or a sample of them) is read, and what cannot be read or
holds wrong labels is listed with its file and the reason.

Example:
    >>> from encdec.datasets import SyntheticShapes
    >>> report = check_dataset(SyntheticShapes(n=8, size=16), limit=4)
    >>> report.ok, report.checked
    (True, 4)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import torch
from torch.utils.data import Subset

from ._base import subset
from ._checks import CorruptImageError, LabelError

__all__ = ["DataProblem", "DataReport", "check_dataset", "without_problems"]


@dataclass(frozen=True)
class DataProblem:
    """One sample that cannot be used: its index in the dataset (-1 for a file left out before the dataset was
    made, such as a mask without its image), the file at fault and why."""

    index: int
    file: str
    reason: str


@dataclass
class DataReport:
    """What ``check_dataset`` found.

    Attributes:
        total: Samples in the dataset.
        checked: Samples read.
        problems: The samples that failed, in index order.
    """

    total: int
    checked: int
    problems: List[DataProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every checked sample was read."""
        return not self.problems

    def summary(self, shown: int = 10) -> str:
        """A few lines for people: how many were checked, how many failed, and the first ``shown`` failures.

        Example:
            >>> DataReport(total=3, checked=3).summary()
            'checked 3 of 3 samples: all readable'
        """
        head = f"checked {self.checked} of {self.total} samples"
        if self.ok:
            return f"{head}: all readable"
        lines = [f"{head}: {len(self.problems)} cannot be used"]
        lines += [f"  {p.file}: {p.reason}" for p in self.problems[:shown]]
        if len(self.problems) > shown:
            lines.append(f"  ... and {len(self.problems) - shown} more")
        return "\n".join(lines)


def _unwrap(dataset: Any, index: int) -> Tuple[Any, int]:
    """The dataset that holds the files and the index there, through any ``Subset`` layers."""
    while isinstance(dataset, Subset):
        dataset, index = dataset.dataset, int(dataset.indices[index])
    return dataset, index


def _sample_file(dataset: Any, index: int) -> str:
    dataset, index = _unwrap(dataset, index)
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and 0 <= index < len(samples):
        entry = samples[index]
        return str(entry[0]) if isinstance(entry, tuple) else str(entry)
    return f"sample {index}"


def _read(dataset: Any, index: int) -> Any:
    """Read one sample without the dataset's own corrupt-file substitution."""
    inner, inner_index = _unwrap(dataset, index)
    reader = getattr(inner, "read_unskipped", None)
    return reader(inner_index) if reader is not None else dataset[index]


def check_dataset(dataset: Any, *, limit: Optional[int] = None, seed: int = 0) -> DataReport:
    """Read samples of ``dataset`` and report those that fail (unreadable image or mask, labels outside the
    classes, image and mask of different sizes).

    Torch's and Python's random generators are left as they were (augmentations draw from them while reading).

    Args:
        dataset: Any map-style dataset; encdec's file datasets also name the file at fault.
        limit: Read this many samples, spread over the dataset (a seeded random choice); ``None`` reads all.
        seed: Seed of that choice.

    Returns:
        A ``DataReport``.

    Example:
        >>> from encdec.datasets import SyntheticShapes
        >>> check_dataset(SyntheticShapes(n=4, size=16)).summary()
        'checked 4 of 4 samples: all readable'
    """
    total = len(dataset)
    indices = list(range(total))
    if limit is not None and limit < total:
        indices = sorted(random.Random(seed).sample(indices, limit))
    problems = []
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        try:
            for index in indices:
                try:
                    _read(dataset, index)
                except (CorruptImageError, LabelError, FileNotFoundError, ValueError) as error:
                    file = getattr(error, "path", None) or getattr(error, "source", None)
                    reason = getattr(error, "reason", None) or str(error)
                    problems.append(DataProblem(index, str(file or _sample_file(dataset, index)), reason))
        finally:
            random.setstate(state)
    return DataReport(total=total, checked=len(indices), problems=problems)


def without_problems(dataset: Any, report: DataReport) -> Any:
    """``dataset`` without the samples ``report`` found unusable (a subset keeping its descriptive attributes).

    Example:
        >>> from encdec.datasets import SyntheticShapes
        >>> ds = SyntheticShapes(n=4, size=16)
        >>> len(without_problems(ds, DataReport(4, 4, [DataProblem(1, "x.png", "unreadable")])))
        3
    """
    if report.ok:
        return dataset
    bad = {p.index for p in report.problems}
    return subset(dataset, [i for i in range(len(dataset)) if i not in bad])
