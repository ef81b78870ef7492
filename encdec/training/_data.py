"""Data randomness that a resumed run repeats exactly, whatever the workers.

``fit`` reads the training data through ``reproducible_loader``: the shuffle order of each epoch is drawn
from ``(seed, epoch)``, and every sample is read with Python's, NumPy's and torch's global generators seeded from
``(seed, epoch, index)`` (and put back afterwards in the main process). So the augmentation of sample ``i`` in
epoch ``e`` is the same in an uninterrupted run and in one resumed at any epoch, with or without worker
processes, persistent or not, and the loader never draws from the global generator (which dropout uses).

No sample is left out of a training epoch unless the loader asks (``drop_last=True``): a trailing batch of a single
sample, which BatchNorm cannot normalise in training mode, joins the batch before it.
"""

from __future__ import annotations

import random
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, RandomSampler, Sampler

from ..batches import split_batch

__all__ = ["reproducible_loader", "set_data_epoch", "batch_shape", "fold_single_tail", "folds_single_tail"]


def _sample_seed(seed: int, epoch: int, index: int) -> int:
    return hash((seed, epoch, index)) & 0xFFFFFFFF  # ints hash the same in every process and run


class _SeededItems(Dataset):
    """``dataset[index]`` for keys ``(seed, epoch, index)``, with the global generators seeded from the key."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:  # num_classes, ignore_index, class_names, ... of the dataset
        if name == "dataset" or name.startswith("__"):  # never the dataset's __getitems__ (batched reads)
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: Tuple[int, int, int]) -> Any:
        seed, epoch, index = key
        saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        value = _sample_seed(seed, epoch, index)
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.set_rng_state(saved[2])


def fold_single_tail(batches: Iterator[List[int]]) -> Iterator[List[int]]:
    """The batches, with a last batch of one sample joined to the batch before it.

    Example:
        >>> [len(b) for b in fold_single_tail(iter([[0, 1], [2, 3], [4]]))]
        [2, 3]
        >>> [len(b) for b in fold_single_tail(iter([[0], ]))]  # a single batch stays as it is
        [1]
    """
    previous: Optional[List[int]] = None
    for batch in batches:
        if previous is not None:
            if len(batch) == 1:
                previous = previous + list(batch)
                continue
            yield previous
        previous = list(batch)
    if previous is not None:
        yield previous


def folds_single_tail(samples: int, batch_size: int, drop_last: bool) -> bool:
    """Whether an epoch of ``samples`` in batches of ``batch_size`` ends in a batch of one that gets folded.

    Example:
        >>> folds_single_tail(17, 8, False), folds_single_tail(17, 8, True), folds_single_tail(1, 8, False)
        (True, False, False)
    """
    return not drop_last and batch_size > 1 and samples > batch_size and samples % batch_size == 1


class _EpochBatches(Sampler[List[Tuple[int, int, int]]]):
    """The batches of the original loader as ``(seed, epoch, index)`` keys; a plain shuffle is redrawn from
    ``(seed, epoch)``."""

    def __init__(self, loader: DataLoader, seed: int) -> None:
        self.seed = seed
        self.epoch = 0
        self.batch_size = loader.batch_size
        self.drop_last = loader.drop_last
        self.batch_sampler = loader.batch_sampler
        sampler = loader.sampler
        self.shuffle = (type(sampler) is RandomSampler and not sampler.replacement
                        and sampler.num_samples == len(loader.dataset))  # the plain shuffle=True case
        self.length = len(loader.dataset)

    def _indices(self) -> Iterator[List[int]]:
        if not self.shuffle:
            yield from self.batch_sampler
            return
        generator = torch.Generator().manual_seed(_sample_seed(self.seed, self.epoch, -1))
        order = torch.randperm(self.length, generator=generator).tolist()
        size = self.batch_size
        for start in range(0, self.length, size):
            batch = order[start:start + size]
            if len(batch) == size or not self.drop_last:
                yield batch

    @property
    def folds(self) -> bool:
        """Whether each epoch's last batch of one sample joins the batch before it (plain batching only)."""
        sampler = getattr(self.batch_sampler, "sampler", None)
        if self.batch_size is None or sampler is None or not hasattr(sampler, "__len__"):
            return False
        return folds_single_tail(len(sampler), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[List[Tuple[int, int, int]]]:
        for batch in fold_single_tail(self._indices()) if self.folds else self._indices():
            yield [(self.seed, self.epoch, int(i)) for i in batch]

    def __len__(self) -> int:
        return len(self.batch_sampler) - int(self.folds)


def reproducible_loader(loader: Optional[DataLoader], seed: int) -> Optional[DataLoader]:
    """A copy of ``loader`` whose order and per-sample randomness follow ``(seed, epoch, index)``.

    Loaders over an ``IterableDataset`` (no indices) are returned unchanged.
    """
    if not isinstance(loader, DataLoader) or isinstance(loader.dataset, IterableDataset):
        return loader
    if loader.batch_sampler is None:  # batch_size=None: no batching to re-key
        return loader
    kwargs: dict = {
        "batch_sampler": _EpochBatches(loader, seed),
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        # worker base seeds come from a private generator: building an iterator never draws from the global one
        "generator": torch.Generator().manual_seed(seed),
    }
    if loader.num_workers > 0:
        kwargs.update(persistent_workers=loader.persistent_workers, prefetch_factor=loader.prefetch_factor,
                      multiprocessing_context=loader.multiprocessing_context)
    return DataLoader(_SeededItems(loader.dataset), **kwargs)


def set_data_epoch(loader: Any, epoch: int, seed: int) -> None:
    """Tell a reproducible loader (and a ``DistributedSampler`` inside it) which epoch it reads, with which seed."""
    batches = getattr(loader, "batch_sampler", None)
    if isinstance(batches, _EpochBatches):
        batches.epoch, batches.seed = epoch, seed
        inner = getattr(batches.batch_sampler, "sampler", None)
        if isinstance(inner, DistributedSampler):
            inner.seed = seed
            inner.set_epoch(epoch)


def batch_shape(loader: Any) -> Optional[Tuple[int, ...]]:
    """The shape of one full image batch of ``loader`` from its first sample (read with the global generators
    seeded and put back), or ``None`` when that cannot be known without iterating."""
    dataset = getattr(loader, "dataset", None)
    batch_size = getattr(loader, "batch_size", None) or getattr(getattr(loader, "batch_sampler", None),
                                                                "batch_size", None)
    if dataset is None or isinstance(dataset, IterableDataset) or not batch_size:
        return None
    try:
        if len(dataset) == 0:
            return None
        sample = _SeededItems(dataset)[(0, 0, 0)]
        image = split_batch(sample)[0]
        return (min(int(batch_size), len(dataset)),) + tuple(image.shape)
    except Exception:  # noqa: BLE001 - the first step will report a bad sample with context
        return None
