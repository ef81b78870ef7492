"""``evaluate``: loss and metrics of a model on a loader, in one process or across a distributed job."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Union

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import _distributed
from .._distributed import DistInfo
from ..layout import choose_channels_last
from ..runtime import check_channels_last, resolve_device, resolve_precision
from ._data import batch_shape
from ._defaults import dataset_attr, default_loss
from ._run import Run
from ._steps import evaluate_epoch

__all__ = ["evaluate"]


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    metrics: Any = None,
    *,
    loss: Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor], None] = "default",
    device: Union[str, torch.device] = "auto",
    precision: str = "fp32",
    channels_last: Union[bool, str] = "auto",
    progress: bool = False,
) -> Dict[str, Any]:
    """Loss and metrics of ``model`` on ``loader``, in eval mode under ``torch.inference_mode``.

    In a distributed job (process group initialised, e.g. under ``torchrun`` after ``fit``), each rank reads
    its share of a map-style dataset and the counts are all-reduced, so every rank returns the same numbers as a
    one-process evaluation. The model's train/eval mode is restored afterwards.

    Args:
        model: Segmentation model or classifier.
        loader: Yields ``(images, targets)``.
        metrics: Metric object (see ``fit``); default by the shape of the logits.
        loss: ``loss(logits, targets)``; ``"default"``: cross entropy ignoring the dataset's ``ignore_index``;
            ``None``: no loss.
        device: ``"auto"`` or a torch device; the model is moved there.
        precision: ``"fp32"`` (default: reported numbers must be reproducible on any machine), or ``"auto"``,
            ``"bf16"``, ``"fp16"`` to opt in to faster, slightly different scores (see
            ``encdec.runtime.resolve_precision``).
        channels_last: Channels-last memory format. ``"auto"``: the rule ``encdec.fit`` and
            ``encdec.predict`` follow for inference (``encdec.runtime.channels_last_rule``), for the
            loader's batch shape: on for conv nets on CUDA and in bf16 on the CPU, and in fp32 on the CPU for
            images of at least 128x128 pixels; nothing is timed. ``"measure"``: time both layouts on a batch of
            that shape first. ``True`` / ``False``: as given.
        progress: Show a tqdm bar.

    Returns:
        ``{"loss": ..., "miou": ..., ...}``: floats, with per-class metrics as lists.

    Example:
        >>> import encdec
        >>> from torch.utils.data import DataLoader
        >>> from encdec.datasets import SyntheticShapes
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> scores = encdec.evaluate(model, DataLoader(SyntheticShapes(n=8, size=32), batch_size=4))
        >>> 0.0 <= scores["miou"] <= 1.0
        True
    """
    if isinstance(loss, str) and loss != "default":
        raise ValueError(f"loss must be a callable, 'default' or None, got {loss!r}")
    check_channels_last(channels_last)
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    use_channels_last = choose_channels_last(channels_last, model, device, precision,
                                             batch_shape(loader) if isinstance(channels_last, str) else None)
    info = _distributed.setup(device.type) if _distributed.is_initialized() else DistInfo()
    if isinstance(loader, DataLoader):
        loader = _distributed.shard_loader(loader, info, train=False, seed=0)  # type: ignore[assignment]
    loss_fn = default_loss(loader if isinstance(loader, DataLoader) else None) if loss == "default" else loss
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    model.to(device)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    run = Run(model=model, net=model, device=device, precision=precision, channels_last=use_channels_last,
              info=info, loss_fn=loss_fn, metrics=metrics, ignore_index=dataset_attr(loader, "ignore_index"),
              show_bars=progress)
    stats = evaluate_epoch(run, loader, "evaluation")
    stats.pop("images", None)
    return stats
