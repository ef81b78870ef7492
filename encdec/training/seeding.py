"""Seeding: one call for Python, NumPy and torch, and a DataLoader ``worker_init_fn`` that follows it."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "seed_worker"]


def seed_everything(seed: int, *, deterministic: bool = False) -> int:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: Any integer in ``[0, 2**32)``.
        deterministic: Also ask torch for deterministic kernels (``torch.use_deterministic_algorithms`` with
            warnings only, cuDNN autotuning off). CPU training is deterministic without it.

    Returns:
        The seed.

    Raises:
        ValueError: ``seed`` is not an integer in range.

    Example:
        >>> import torch
        >>> _ = seed_everything(0); a = torch.rand(2)
        >>> _ = seed_everything(0); torch.equal(a, torch.rand(2))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return seed


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoaders: seed ``random`` and NumPy in each worker from torch's worker seed.

    torch gives every worker ``base_seed + worker_id``; the base seed comes from the loader's ``generator`` (or the
    global torch RNG), so with ``seed_everything`` or a seeded generator the augmentations are reproducible.

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader
        >>> g = torch.Generator().manual_seed(0)
        >>> loader = DataLoader(list(range(8)), batch_size=4, shuffle=True, num_workers=2,
        ...                     worker_init_fn=seed_worker, generator=g)
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
