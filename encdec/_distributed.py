"""The few torch.distributed pieces ``encdec.fit`` needs: set-up from the ``torchrun`` environment,
data sharding, metric reduction and "only rank 0 talks and writes".

A process is distributed when ``WORLD_SIZE`` > 1 in its environment (``torchrun`` sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``) or when the caller already initialised a process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler


@dataclass
class DistInfo:
    """Where this process stands in a (possibly one-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device_type: str) -> DistInfo:
    """Join the process group described by the environment; a one-process ``DistInfo`` otherwise.

    Uses ``nccl`` on CUDA and ``gloo`` elsewhere. A group the caller initialised is reused and left open.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError(f"WORLD_SIZE={world_size} is set but this torch build has no torch.distributed support")
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return DistInfo(rank, world_size, local_rank, True)


def teardown(info: DistInfo) -> None:
    """Destroy the process group if ``setup`` created it."""
    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def is_initialized() -> bool:
    """Whether a default process group exists (``torch.distributed`` available and initialised)."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Processes in the default group; 1 when not distributed."""
    return dist.get_world_size() if is_initialized() else 1


def collective_device() -> torch.device:
    """The device the default group's collectives need: CUDA for ``nccl``, the CPU otherwise."""
    if is_initialized() and str(dist.get_backend()).lower() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor, info: Optional[DistInfo] = None) -> torch.Tensor:
    """Sum ``tensor`` over all processes of the default group, in place, and return it.

    A no-op in one process. A tensor on a device the backend cannot reduce (a CUDA tensor under ``gloo``, a
    CPU tensor under ``nccl``) is reduced through a copy on the backend's device and written back.
    """
    if (info is not None and not info.enabled) or world_size() == 1:
        return tensor
    device = collective_device()
    if tensor.device.type == device.type:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor
    moved = tensor.to(device)
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    tensor.copy_(moved)
    return tensor


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics) to every rank, so all ranks hold the same model."""
    if not info.enabled:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index starting at ``rank``, without the padding ``DistributedSampler`` adds.

    Used for evaluation, so that each sample is counted exactly once and the all-reduced metrics equal a
    one-process evaluation.
    """

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, length, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def shard_loader(loader: Optional[DataLoader], info: DistInfo, *, train: bool, seed: int) -> Optional[DataLoader]:
    """A copy of ``loader`` that reads only this rank's share of the dataset.

    Training loaders get a ``DistributedSampler`` (shuffled if the original was, reseeded
    every epoch with ``set_epoch``); evaluation loaders a ``ShardSampler``. Loaders that already use a
    ``DistributedSampler`` or wrap an ``IterableDataset`` are returned unchanged.
    """
    if loader is None or not info.enabled:
        return loader
    if isinstance(loader.sampler, (DistributedSampler, ShardSampler)) or not hasattr(loader.dataset, "__len__"):
        return loader
    if getattr(loader, "batch_size", None) is None:
        raise ValueError(
            "distributed fit needs DataLoaders built with batch_size= (not a custom batch_sampler), "
            "or loaders that already use a DistributedSampler"
        )
    sampler: Sampler[int]
    if train:
        sampler = DistributedSampler(
            loader.dataset,
            num_replicas=info.world_size,
            rank=info.rank,
            shuffle=isinstance(loader.sampler, RandomSampler),
            seed=seed,
            drop_last=loader.drop_last,
        )
    else:
        sampler = ShardSampler(len(loader.dataset), info.rank, info.world_size)
    kwargs: dict[str, Any] = {
        "batch_size": loader.batch_size,
        "sampler": sampler,
        "num_workers": loader.num_workers,
        "collate_fn": loader.collate_fn,
        "pin_memory": loader.pin_memory,
        "drop_last": loader.drop_last,
        "timeout": loader.timeout,
        "worker_init_fn": loader.worker_init_fn,
        "generator": loader.generator,
    }
    if loader.num_workers > 0:
        kwargs["persistent_workers"] = loader.persistent_workers
        kwargs["prefetch_factor"] = loader.prefetch_factor
        kwargs["multiprocessing_context"] = loader.multiprocessing_context
    return DataLoader(loader.dataset, **kwargs)


def set_epoch(loader: Optional[DataLoader], epoch: int) -> None:
    """Reseed a DistributedSampler for ``epoch`` (every rank gets a new, disjoint shuffle)."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)


def gather_objects(obj: Any, info: DistInfo) -> List[Any]:
    """``all_gather_object`` in a distributed job, ``[obj]`` otherwise."""
    if not info.enabled:
        return [obj]
    out: List[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
