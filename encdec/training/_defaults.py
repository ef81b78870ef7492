"""What ``fit`` and ``evaluate`` pick when the caller does not say: loss, metrics, optimizer, monitored key and
when the scheduler steps; and reading dataset attributes through ``Subset``-style wrappers."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..metrics import ClassificationMetrics, SegmentationMetrics

__all__ = [
    "dataset_attr", "default_loss", "default_metrics", "default_optimizer", "is_plateau", "mode_for",
    "pick_monitor", "scalarize", "scheduler_interval",
]

PER_STEP_SCHEDULERS = ("OneCycleLR", "CyclicLR")


def dataset_attr(loader: Any, name: str) -> Any:
    """An attribute of the loader's dataset, looking through ``Subset``-style wrappers (``.dataset``)."""
    dataset = getattr(loader, "dataset", None)
    for _ in range(5):
        if dataset is None:
            return None
        if hasattr(dataset, name):
            return getattr(dataset, name)
        dataset = getattr(dataset, "dataset", None)
    return None


def default_loss(loader: Optional[DataLoader]) -> nn.Module:
    ignore_index = dataset_attr(loader, "ignore_index")
    return nn.CrossEntropyLoss(ignore_index=-100 if ignore_index is None else int(ignore_index))


def default_metrics(logits: torch.Tensor, ignore_index: Optional[int]) -> Any:
    """SegmentationMetrics for (N, C, H, W) logits, ClassificationMetrics for (N, C)."""
    num_classes = int(logits.shape[1])
    if logits.dim() >= 3:
        return SegmentationMetrics(num_classes, ignore_index=ignore_index)
    return ClassificationMetrics(num_classes, topk=(1, 5))  # k > num_classes is dropped by the metric


def scalarize(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else [float(v) for v in value.detach().cpu().flatten()]
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else [float(v) for v in value.flatten()]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [scalarize(v) for v in value]
    return value


def mode_for(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"


def pick_monitor(record: Dict[str, Any]) -> str:
    for key in ("val_miou", "val_dice", "val_accuracy", "val_loss", "train_miou", "train_dice", "train_accuracy"):
        if isinstance(record.get(key), (int, float)):
            return key
    return "train_loss"


def default_optimizer(groups: List[Dict[str, Any]], device: torch.device) -> torch.optim.Optimizer:
    """Adam, lr 1e-3, over parameter groups (``encdec.training.transfer.param_groups``); the fused kernel on CPU
    and CUDA (4x faster on CPU)."""
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for g in groups for p in g["params"]):
        try:
            return torch.optim.Adam(groups, lr=1e-3, fused=True)
        except (RuntimeError, TypeError):  # an older torch without the fused kernel for this device
            pass
    return torch.optim.Adam(groups, lr=1e-3)


def scheduler_interval(scheduler: Any, interval: str) -> str:
    if interval not in ("auto", "epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'auto', 'epoch' or 'step', got {interval!r}")
    if interval == "step" and is_plateau(scheduler):
        raise ValueError(
            "scheduler_interval='step' cannot drive ReduceLROnPlateau, which steps on the monitored value once "
            "per epoch; use scheduler_interval='auto' or 'epoch'"
        )
    if interval != "auto":
        return interval
    return "step" if type(scheduler).__name__ in PER_STEP_SCHEDULERS else "epoch"


def is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
