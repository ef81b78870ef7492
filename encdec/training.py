"""``fit``, ``evaluate`` and ``History``: a small training helper that resumes exactly, runs fast on CPU and
scales out with torch.distributed.

``fit`` is one function you can read top to bottom; the helpers below it each do one thing (pick the device and
precision, run one training epoch, run one evaluation pass, write a checkpoint, restore one).

Distributed training:
    Launch the same script with ``torchrun``; ``fit`` reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the
    environment, initialises the process group (``gloo`` on CPU, ``nccl`` on CUDA), wraps the model in
    :class:`~torch.nn.parallel.DistributedDataParallel`, shards the training data with a
    :class:`~torch.utils.data.DistributedSampler` (the validation data with a non-padding shard, so every sample
    is counted once), all-reduces losses and metric counts, and lets only rank 0 print and write files::

        # one machine, 4 processes (CPU: gloo; GPUs: one process per GPU, nccl)
        torchrun --standalone --nproc_per_node=4 train.py

        # two machines, 8 GPUs each: run on every machine, with the first machine's address
        torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 \\
                 --rdzv_backend=c10d --rdzv_endpoint=10.0.0.1:29500 train.py   # node_rank=1 on the other

    ``batch_size`` of the loaders is per process. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing changes.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from . import _checkpoint, _distributed
from ._distributed import DistInfo

__all__ = [
    "fit",
    "evaluate",
    "History",
    "NonFiniteLossError",
    "seed_everything",
    "seed_worker",
    "resolve_device",
    "resolve_precision",
    "cpu_supports_bf16",
    "resolve_channels_last",
    "autocast",
]

PathLike = Union[str, "os.PathLike[str]"]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LAST = "last.pt"
BEST = "best.pt"
BEST_WEIGHTS = "best.safetensors"
HISTORY_JSON = "history.json"
_PER_STEP_SCHEDULERS = ("OneCycleLR", "CyclicLR")


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite.

    Attributes:
        epoch: 1-based epoch in which it happened.
        step: 1-based batch index within that epoch.
        checkpoint: The last checkpoint written before it (``None`` without ``checkpoint_dir`` or before the
            first epoch ended); ``fit(..., resume=True)`` continues from it.

    Example:
        >>> try:
        ...     raise NonFiniteLossError("loss is nan", epoch=2, step=5, checkpoint=None)
        ... except FloatingPointError as error:
        ...     (error.epoch, error.step)
        (2, 5)
    """

    def __init__(self, message: str, *, epoch: int, step: int, checkpoint: Optional[Path]) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.checkpoint = checkpoint


# ---------------------------------------------------------------------------------------------- reproducibility


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
    global torch RNG), so with :func:`seed_everything` or a seeded generator the augmentations are reproducible.

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


# ---------------------------------------------------------------------------------------------- device and precision


def resolve_device(device: Union[str, torch.device, None] = "auto") -> torch.device:
    """``"auto"``: CUDA if available, else Apple MPS, else CPU; otherwise ``torch.device(device)``.

    Raises:
        ValueError: ``device`` names no device type torch knows.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:1' or 'mps'") from error


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so bf16 autocast is faster than fp32.

    Example:
        >>> isinstance(cpu_supports_bf16(), bool)
        True
    """
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(cpu, name, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # noqa: BLE001 - a probe that fails means "no"
            continue
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn ``"auto"`` into the fastest safe precision for ``device`` and check explicit requests.

    ``"auto"`` gives ``"bf16"`` on CUDA devices that support it (else ``"fp16"``, with a gradient scaler in
    :func:`fit`), ``"bf16"`` on CPUs with native bfloat16 (AVX512-BF16 or AMX), and ``"fp32"`` otherwise.

    Raises:
        ValueError: ``precision`` is not one of ``auto``, ``fp32``, ``bf16``, ``fp16``, or ``fp16`` is asked for
            on a device other than CUDA.

    Example:
        >>> resolve_precision("fp32", torch.device("cpu"))
        'fp32'
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not supported; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if device.type == "cpu":
            return "bf16" if cpu_supports_bf16() else "fp32"
        return "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device (got {device.type}); use 'bf16' on CPU or 'fp32'"
        )
    return precision


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast context for a resolved precision (a no-op for ``fp32``).

    Example:
        >>> with autocast("bf16", torch.device("cpu")):
        ...     y = torch.nn.Linear(4, 2)(torch.randn(1, 4))
        >>> y.dtype
        torch.bfloat16
    """
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


def resolve_channels_last(
    channels_last: Union[bool, str], model: nn.Module, device: torch.device, precision: str
) -> bool:
    """Whether to use the channels-last memory format; ``"auto"`` decides from measurements.

    ``"auto"`` is on for conv nets on CUDA (cuDNN's mixed-precision kernels are NHWC) and for conv nets running in
    ``bf16`` on the CPU (oneDNN's bfloat16 convolutions are fastest in NHWC: 1.75x over fp32 for resnet34_unet
    inference against 1.46x for NCHW bf16); off for fp32 on the CPU, where NHWC trains slower than NCHW.

    Raises:
        ValueError: ``channels_last`` is not ``True``, ``False`` or ``"auto"``.

    Example:
        >>> resolve_channels_last("auto", torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "bf16")
        True
    """
    if channels_last == "auto":
        fast = device.type == "cuda" or (device.type == "cpu" and precision == "bf16")
        return fast and _has_conv(model)
    if not isinstance(channels_last, bool):
        raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
    return channels_last


def _to_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# ---------------------------------------------------------------------------------------------- History


_BOOKKEEPING = ("epoch", "lr", "seconds", "train_seconds", "images_per_second")


class History:
    """Per-epoch record of a :func:`fit` run: losses, metrics, learning rate, seconds and images/s.

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
        """Rebuild a History from :meth:`to_dict` output.

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
        """Write :meth:`to_dict` as JSON, atomically.

        Example:
            >>> import tempfile, json
            >>> h = History(); h.append({"epoch": 1, "train_loss": 0.3})
            >>> p = h.save_json(tempfile.mkdtemp() + "/history.json")
            >>> json.loads(p.read_text())["epochs"][0]["train_loss"]
            0.3
        """
        return _checkpoint.atomic_write_json(self.to_dict(), path)

    def plot(self, path: PathLike, *, dpi: int = 100) -> Path:
        """Draw the loss curves (train and validation) and the metric curves into one image file.

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
        try:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator
        except ImportError as error:
            raise ImportError(
                "History.plot needs matplotlib; install it with: pip install 'encdec[plot]'"
            ) from error
        if not self.epochs:
            raise ValueError("this History has no epochs to plot")
        epochs = [record.get("epoch", i + 1) for i, record in enumerate(self.epochs)]
        scalar = [
            key
            for key in self.keys()
            if key not in _BOOKKEEPING and all(isinstance(r.get(key), (int, float, type(None))) for r in self.epochs)
        ]
        losses = [k for k in scalar if k.endswith("loss")]
        metrics = sorted({k.split("_", 1)[1] if k.startswith(("train_", "val_")) else k for k in scalar} - {"loss"})
        panels = [("loss", losses)] + [(name, [k for k in (f"train_{name}", f"val_{name}", name) if k in scalar])
                                        for name in metrics]
        figure = Figure(figsize=(5 * min(len(panels), 3), 3.6 * math.ceil(len(panels) / 3)))
        cols = min(len(panels), 3)
        rows = math.ceil(len(panels) / cols)
        for index, (title, keys) in enumerate(panels, start=1):
            axis = figure.add_subplot(rows, cols, index)
            for key in keys:
                values = [float("nan") if v is None else v for v in self[key]]
                axis.plot(epochs, values, marker="o", markersize=3, label=key)
            if self.best_epoch is not None and self.monitor in keys:
                axis.axvline(self.best_epoch, color="grey", linestyle=":", label=f"best ({self.monitor})")
            axis.set_title(title)
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            if keys:
                axis.legend(fontsize="small")
        figure.tight_layout()
        path = Path(path)
        figure.savefig(path, dpi=dpi)
        return path

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items() if isinstance(v, float) and k not in _BOOKKEEPING)
        return f"History(epochs={len(self)}, best_epoch={self.best_epoch}, last: {shown})"


# ---------------------------------------------------------------------------------------------- defaults


def _dataset_attr(loader: Optional[DataLoader], name: str) -> Any:
    """An attribute of the loader's dataset, looking through ``Subset``-style wrappers (``.dataset``)."""
    dataset = getattr(loader, "dataset", None)
    for _ in range(5):
        if dataset is None:
            return None
        if hasattr(dataset, name):
            return getattr(dataset, name)
        dataset = getattr(dataset, "dataset", None)
    return None


def _default_loss(loader: Optional[DataLoader]) -> nn.Module:
    ignore_index = _dataset_attr(loader, "ignore_index")
    return nn.CrossEntropyLoss(ignore_index=-100 if ignore_index is None else int(ignore_index))


def _default_metrics(logits: torch.Tensor, ignore_index: Optional[int]) -> Any:
    """SegmentationMetrics for (N, C, H, W) logits, ClassificationMetrics for (N, C)."""
    from .metrics import ClassificationMetrics, SegmentationMetrics

    num_classes = int(logits.shape[1])
    if logits.dim() >= 3:
        return SegmentationMetrics(num_classes, ignore_index=ignore_index)
    return ClassificationMetrics(num_classes, topk=(1, 5))  # k > num_classes is dropped by the metric


def _scalarize(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else [float(v) for v in value.detach().cpu().flatten()]
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else [float(v) for v in value.flatten()]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_scalarize(v) for v in value]
    return value


def _mode_for(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"


def _pick_monitor(record: Dict[str, Any]) -> str:
    for key in ("val_miou", "val_dice", "val_accuracy", "val_loss", "train_miou", "train_dice", "train_accuracy"):
        if isinstance(record.get(key), (int, float)):
            return key
    return "train_loss"


def _default_optimizer(model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """Adam, lr 1e-3, over the trainable parameters; the fused kernel on CPU and CUDA (4x faster on CPU)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (all have requires_grad=False)")
    if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params):
        try:
            return torch.optim.Adam(params, lr=1e-3, fused=True)
        except (RuntimeError, TypeError):  # an older torch without the fused kernel for this device
            pass
    return torch.optim.Adam(params, lr=1e-3)


def _scheduler_interval(scheduler: Any, interval: str) -> str:
    if interval not in ("auto", "epoch", "step"):
        raise ValueError(f"scheduler_interval must be 'auto', 'epoch' or 'step', got {interval!r}")
    if interval == "step" and _is_plateau(scheduler):
        raise ValueError(
            "scheduler_interval='step' cannot drive ReduceLROnPlateau, which steps on the monitored value once "
            "per epoch; use scheduler_interval='auto' or 'epoch'"
        )
    if interval != "auto":
        return interval
    return "step" if type(scheduler).__name__ in _PER_STEP_SCHEDULERS else "epoch"


def _is_plateau(scheduler: Any) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


# ---------------------------------------------------------------------------------------------- progress output


def _bar(total: Optional[int], desc: str, enabled: bool, leave: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=leave, dynamic_ncols=True, file=sys.stderr)


_HEADLINE = ("loss", "miou", "dice", "accuracy", "top5_accuracy")


def _format_record(record: Dict[str, Any], epochs: int, monitor: Optional[str] = None) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key, value in record.items():
        headline = key.split("_", 1)[-1] in _HEADLINE or key == monitor
        if key in _BOOKKEEPING or not isinstance(value, float) or not headline:
            continue
        parts.append(f"{key} {value:.4f}")
    parts.append(f"lr {record['lr']:.3g}")
    parts.append(f"{record['seconds']:.1f}s")
    parts.append(f"{record['images_per_second']:.1f} img/s")
    return "  ".join(parts)


# ---------------------------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: Optional[DataLoader] = None,
    *,
    epochs: int,
    optimizer: Optional[torch.optim.Optimizer] = None,
    loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    scheduler: Any = None,
    scheduler_interval: str = "auto",
    metrics: Any = None,
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    channels_last: Union[bool, str] = "auto",
    accumulate_steps: int = 1,
    clip_grad_norm: Optional[float] = None,
    checkpoint_dir: Optional[PathLike] = None,
    monitor: Optional[str] = None,
    early_stopping: Optional[int] = None,
    resume: Union[bool, PathLike, None] = None,
    seed: Optional[int] = None,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``epochs`` epochs, validating after each, and return the :class:`History`.

    The loop: per batch, forward under autocast, loss in float32, backward (scaled under fp16), and every
    ``accumulate_steps`` batches an optimizer step (unscale, clip, step, update); then validation under
    ``torch.inference_mode``, the scheduler step, checkpoints and early stopping. ``fit`` switches train/eval
    modes itself and moves the model to ``device``; the model is trained in place.

    Args:
        model: A segmentation model (logits ``(N, C, H, W)``) or classifier (logits ``(N, C)``).
        train_loader: Yields ``(images, targets)`` batches.
        val_loader: Same for validation; ``None`` skips validation.
        epochs: Total number of epochs (a resumed run continues up to this number).
        optimizer: Defaults to ``Adam(lr=1e-3)`` over the trainable parameters, with ``fused=True`` on CPU and CUDA
            (pass ``fused=True`` to your own Adam/AdamW/SGD too: on CPU the fused step is about 4x faster).
        loss: ``loss(logits, targets) -> scalar``. Defaults to cross entropy ignoring the dataset's
            ``ignore_index`` (e.g. 255 for VOC) when the dataset has one.
        scheduler: An LR scheduler bound to ``optimizer``, or a callable ``f(optimizer) -> scheduler`` such as a
            scheduler class or a ``lambda`` (handy with the default optimizer). ``ReduceLROnPlateau`` is stepped
            once per epoch with the monitored value, so its ``mode`` must match (``"max"`` for ``val_miou``).
        scheduler_interval: ``"auto"`` steps ``OneCycleLR`` and ``CyclicLR`` after every optimizer step and
            every other scheduler once per epoch; ``"step"`` or ``"epoch"`` force one.
        metrics: An object with ``update(logits, targets)``, ``compute() -> dict`` and ``reset()`` (and
            ``sync()`` for distributed runs); copied for training and validation. Defaults to
            :class:`encdec.metrics.SegmentationMetrics` or :class:`encdec.metrics.ClassificationMetrics` by the
            shape of the logits. Training metrics are accumulated from the training forward passes (no second pass).
        device: ``"auto"`` (CUDA, then MPS, then CPU), or any torch device.
        precision: ``"fp32"``, ``"bf16"`` (autocast; CPUs with native bfloat16, or CUDA), ``"fp16"`` (CUDA, with a
            gradient scaler), or ``"auto"``: the fastest safe one (see :func:`resolve_precision`).
        channels_last: Channels-last memory format for model and inputs; ``"auto"``: on for conv nets in bf16 on
            the CPU and on CUDA (see :func:`resolve_channels_last`).
        accumulate_steps: Batches whose gradients are summed (each loss divided by the group size) before one
            optimizer step; a trailing partial group at the end of an epoch is stepped too.
        clip_grad_norm: Clip the global gradient norm to this value before each optimizer step.
        checkpoint_dir: Where to write ``last.pt`` (every epoch), ``best.pt`` and ``best.safetensors`` (when the
            monitored value improves) and ``history.json``, all atomically. Checked for writability first.
        monitor: The History key that decides "best" and early stopping. Defaults to ``val_miou`` (segmentation),
            ``val_accuracy`` (classification), or ``val_loss`` / ``train_loss`` when there is nothing else. Keys
            containing ``loss`` are minimised, all others maximised.
        early_stopping: Patience: stop after this many epochs without improvement of ``monitor``. The best
            epoch's weights are restored into ``model`` however training ends (finished, stopped, or an error).
        resume: ``True``: continue from ``checkpoint_dir/last.pt`` if it exists (start fresh otherwise); a path:
            continue from that checkpoint. Restores model, optimizer, scheduler, grad scaler, epoch and step,
            history, early-stopping state and the Python / NumPy / torch / DataLoader-generator RNG states (of every
            rank), so the result equals an uninterrupted run (with ``persistent_workers=False``, the default: a
            persistent worker's own RNG state is not saved). A checkpoint of a different model or optimizer is
            refused. In multi-node runs ``checkpoint_dir`` must be on a filesystem all nodes share.
        seed: Calls :func:`seed_everything` (``seed + rank`` in distributed runs) before training. Build the
            model after seeding too if initial weights should repeat.
        progress: tqdm bars (epochs and batches, with loss and images/s) on a terminal, one plain line per epoch
            otherwise; ``False`` prints nothing. Only rank 0 prints.

    Returns:
        The History (also written to ``checkpoint_dir/history.json``).

    Raises:
        NonFiniteLossError: The loss became NaN/inf; the message names the epoch, the step and the checkpoint
            to resume from.
        ValueError: An argument is out of range, names an unknown option, or a resume checkpoint does not match.
        PermissionError: ``checkpoint_dir`` cannot be written (raised before training starts).

    Example:
        >>> import torch, encdec
        >>> from torch.utils.data import DataLoader
        >>> from encdec.datasets import SyntheticShapes
        >>> train = DataLoader(SyntheticShapes(n=16, size=32), batch_size=8, shuffle=True)
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> history = encdec.fit(model, train, train, epochs=1, progress=False, seed=0)
        >>> len(history), history.monitor
        (1, 'val_miou')
    """
    # ---- arguments: every user error is named here, before anything runs
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(accumulate_steps, bool) or not isinstance(accumulate_steps, int) or accumulate_steps < 1:
        raise ValueError(f"accumulate_steps must be a positive integer, got {accumulate_steps!r}")
    if clip_grad_norm is not None and not (isinstance(clip_grad_norm, (int, float)) and clip_grad_norm > 0):
        raise ValueError(f"clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}")
    if early_stopping is not None and (
        isinstance(early_stopping, bool) or not isinstance(early_stopping, int) or early_stopping < 1
    ):
        raise ValueError(
            f"early_stopping (patience in epochs) must be a positive integer or None, got {early_stopping!r}"
        )
    if resume is True and checkpoint_dir is None:
        raise ValueError("resume=True continues from checkpoint_dir/last.pt, so it needs checkpoint_dir=...")
    if monitor is not None and not isinstance(monitor, str):
        raise ValueError(f"monitor must be a History key such as 'val_miou' or 'val_loss', got {monitor!r}")
    if monitor is not None and monitor.startswith("val_") and val_loader is None:
        raise ValueError(f"monitor={monitor!r} needs a val_loader; pass one, or monitor a train_ key")
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    use_channels_last = resolve_channels_last(channels_last, model, device, precision)

    info = _distributed.setup(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    best_state: Optional[Dict[str, torch.Tensor]] = None
    try:
        # ---- checkpoint directory and resume point
        ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        if ckpt_dir is not None and info.is_main:
            _checkpoint.ensure_writable_dir(ckpt_dir)
        _distributed.barrier(info)
        resume_from: Optional[Path] = None
        if resume is True:
            resume_from = ckpt_dir / LAST if (ckpt_dir / LAST).is_file() else None  # type: ignore[operator]
        elif resume not in (None, False):
            resume_from = Path(resume)  # type: ignore[arg-type]
            if not resume_from.is_file():
                raise FileNotFoundError(f"resume={str(resume)!r}: no such checkpoint file")
        if seed is not None:
            seed_everything(int(seed) + info.rank)

        # ---- model, optimizer, scheduler, loss, scaler, data
        model.to(device)
        if use_channels_last:
            model.to(memory_format=torch.channels_last)
        if optimizer is None:
            optimizer = _default_optimizer(model, device)
        is_factory = isinstance(scheduler, type) or not hasattr(scheduler, "step")  # a class or f(optimizer)
        if scheduler is not None and callable(scheduler) and is_factory:
            scheduler = scheduler(optimizer)
        if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
            raise ValueError(
                "scheduler is bound to a different optimizer than the one fit uses; pass that optimizer as "
                "optimizer=..., or pass scheduler=lambda opt: SomeScheduler(opt, ...) to bind it to fit's optimizer"
            )
        interval = _scheduler_interval(scheduler, scheduler_interval)
        loss_fn = loss if loss is not None else _default_loss(train_loader)
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(device)
        scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
        ignore_index = _dataset_attr(train_loader, "ignore_index")
        data_seed = int(seed) if seed is not None else 0
        train_loader = _distributed.shard_loader(train_loader, info, train=True, seed=data_seed)
        val_loader = _distributed.shard_loader(val_loader, info, train=False, seed=data_seed)
        loaders = [train_loader, val_loader]
        net: nn.Module = model
        if info.enabled:
            device_ids = [device.index] if device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

        history = History(monitor, _mode_for(monitor) if monitor else None)
        start_epoch, global_step, bad_epochs = 0, 0, 0
        if resume_from is not None:
            state = _checkpoint.load_checkpoint(resume_from)
            _checkpoint.compare_fingerprints(
                state["fingerprint"]["model"], model, state["fingerprint"]["optimizer"], optimizer, str(resume_from)
            )
            saved_monitor = state["history"].get("monitor")
            if monitor is not None and saved_monitor is not None and monitor != saved_monitor:
                raise ValueError(
                    f"cannot resume from {resume_from}: it monitored {saved_monitor!r}, this run monitor={monitor!r}; "
                    f"pass monitor={saved_monitor!r} or start a new run"
                )
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler") is not None:
                scaler.load_state_dict(state["scaler"])
            history = History.from_dict(state["history"])
            start_epoch, global_step, bad_epochs = state["epoch"], state["global_step"], state["bad_epochs"]
            rng_states = state["rng"]
            _checkpoint.restore_rng_state(rng_states[info.rank % len(rng_states)], loaders)
            if early_stopping is not None and history.best_epoch is not None:
                best_path = resume_from.parent / BEST
                if best_path.is_file():
                    best_state = _checkpoint.load_checkpoint(best_path)["model"]
            _log(info, progress, f"resumed from {resume_from} after epoch {start_epoch}")
            if early_stopping is not None and history.stopped_early:
                start_epoch = epochs  # the interrupted run had already stopped early: honour that decision

        # ---- the epochs
        show_bars = progress and info.is_main and sys.stderr.isatty()
        epoch_bar = _bar(epochs, "epochs", show_bars, leave=True)
        if epoch_bar is not None:
            epoch_bar.update(start_epoch)
        for epoch in range(start_epoch, epochs):
            started = time.perf_counter()
            lr = float(optimizer.param_groups[0]["lr"])
            _distributed.set_epoch(train_loader, epoch)
            train_stats, global_step = _train_one_epoch(
                net, model, train_loader, optimizer, loss_fn, scaler, scheduler if interval == "step" else None,
                metrics, ignore_index, device, precision, use_channels_last, accumulate_steps, clip_grad_norm,
                info, epoch, global_step, show_bars, ckpt_dir,
            )
            train_seconds = time.perf_counter() - started
            _distributed.broadcast_buffers(model, info)
            record: Dict[str, Any] = {"epoch": epoch + 1, "lr": lr}
            record.update({f"train_{k}": v for k, v in train_stats.items() if k != "images"})
            if val_loader is not None:
                val_stats = _evaluate_loop(
                    model, val_loader, loss_fn, metrics, ignore_index, device, precision, use_channels_last, info,
                    show_bars,
                )
                record.update({f"val_{k}": v for k, v in val_stats.items() if k != "images"})
            record["seconds"] = time.perf_counter() - started
            record["train_seconds"] = train_seconds
            record["images_per_second"] = train_stats["images"] / max(train_seconds, 1e-9)

            # best value, early stopping, epoch-wise scheduler
            if history.monitor is None:
                history.monitor = _pick_monitor(record)
                history.mode = _mode_for(history.monitor)
            value = record.get(history.monitor)
            if not isinstance(value, (int, float)):
                raise ValueError(
                    f"monitor={history.monitor!r} is not a number in the epoch record; available: "
                    + ", ".join(k for k, v in record.items() if isinstance(v, (int, float)))
                )
            improved = math.isfinite(value) and (
                history.best_value is None
                or (value > history.best_value if history.mode == "max" else value < history.best_value)
            )
            if improved:
                history.best_value, history.best_epoch, bad_epochs = float(value), epoch + 1, 0
                if early_stopping is not None:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad_epochs += 1
            if scheduler is not None and interval == "epoch":
                if _is_plateau(scheduler):
                    if scheduler.mode != history.mode:
                        raise ValueError(
                            f"ReduceLROnPlateau(mode={scheduler.mode!r}) is stepped with monitor "
                            f"{history.monitor!r}, which should be {history.mode}imised; "
                            f"create it with mode={history.mode!r}"
                        )
                    scheduler.step(value)
                else:
                    scheduler.step()
            stop = early_stopping is not None and bad_epochs >= early_stopping
            history.stopped_early = stop
            history.append(record)

            # checkpoints (rank 0 writes; every rank contributes its RNG state)
            rng_states = _distributed.gather_objects(_checkpoint.capture_rng_state(loaders), info)
            if ckpt_dir is not None and info.is_main:
                payload = {
                    "format": _checkpoint.CHECKPOINT_FORMAT,
                    "version": _checkpoint.CHECKPOINT_VERSION,
                    "epoch": epoch + 1,
                    "global_step": global_step,
                    "bad_epochs": bad_epochs,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_states,
                    "history": history.to_dict(),
                    "fingerprint": {
                        "model": _checkpoint.model_fingerprint(model),
                        "optimizer": _checkpoint.optimizer_fingerprint(optimizer),
                    },
                    "settings": {"precision": precision, "accumulate_steps": accumulate_steps, "epochs": epochs},
                }
                _checkpoint.atomic_save(payload, ckpt_dir / LAST)
                if improved:
                    _checkpoint.atomic_save(payload, ckpt_dir / BEST)
                    _save_best_weights(model, ckpt_dir / BEST_WEIGHTS, history)
                history.save_json(ckpt_dir / HISTORY_JSON)
            _distributed.barrier(info)

            if epoch_bar is not None:
                shown = {k: record[k] for k in ("train_loss", "val_loss", history.monitor) if k in record}
                epoch_bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()}, refresh=False)
                epoch_bar.update(1)
            elif progress and info.is_main:
                _log(info, progress, _format_record(record, epochs, history.monitor))
            if stop:
                _log(info, progress, f"early stopping after epoch {epoch + 1}: {history.monitor} has not improved "
                     f"for {early_stopping} epochs (best {history.best_value:.4f} at epoch {history.best_epoch})")
                break
        if epoch_bar is not None:
            epoch_bar.close()
        return history
    finally:
        if early_stopping is not None and best_state is not None:
            model.load_state_dict(best_state)
        _distributed.teardown(info)


def _log(info: DistInfo, progress: bool, line: str) -> None:
    if progress and info.is_main:
        print(line, file=sys.stderr, flush=True)


def _save_best_weights(model: nn.Module, path: Path, history: History) -> None:
    """The best weights as ``.safetensors`` with metadata (architecture, epoch, monitored value)."""
    extra = {"epoch": history.best_epoch, "monitor": history.monitor, "value": history.best_value}
    try:
        from .weights import save_weights
    except ImportError:  # pragma: no cover - weights.py is part of the package
        save_weights = None
    if save_weights is not None:
        save_weights(model, path, **extra)
        return
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {k: str(v) for k, v in extra.items()}
    _checkpoint.atomic_write(path, lambda handle: handle.write(save(tensors, metadata=metadata)))


def _train_one_epoch(
    net: nn.Module,
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scaler: Optional[torch.amp.GradScaler],
    step_scheduler: Any,
    metrics: Any,
    ignore_index: Optional[int],
    device: torch.device,
    precision: str,
    channels_last: bool,
    accumulate_steps: int,
    clip_grad_norm: Optional[float],
    info: DistInfo,
    epoch: int,
    global_step: int,
    show_bars: bool,
    ckpt_dir: Optional[Path],
) -> Tuple[Dict[str, Any], int]:
    """One pass over ``loader`` with gradient accumulation; returns loss/metrics (all ranks) and the step count."""
    net.train()
    try:
        n_batches: Optional[int] = len(loader)
    except TypeError:
        n_batches = None
    tracker = copy.deepcopy(metrics) if metrics is not None else None
    if tracker is not None:
        tracker.reset()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    bar = _bar(n_batches, f"epoch {epoch + 1}", show_bars, leave=False)
    started = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)

    def step_optimizer() -> None:
        nonlocal global_step
        if scaler is not None:
            if clip_grad_norm is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            scaler.step(optimizer)
            scaler.update()
        else:
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        global_step += 1
        if step_scheduler is not None:
            step_scheduler.step()

    index = -1
    for index, (images, targets) in enumerate(loader):
        images = _to_input(images, device, channels_last)
        targets = targets.to(device, non_blocking=True)
        group_start = index - index % accumulate_steps
        group_size = accumulate_steps if n_batches is None else min(accumulate_steps, n_batches - group_start)
        stepping = index - group_start + 1 == group_size
        sync = contextlib.nullcontext() if stepping or not info.enabled else net.no_sync()  # type: ignore[operator]
        with sync:
            with autocast(precision, device):
                logits = net(images)
            loss = loss_fn(logits.float(), targets)
            finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
            if info.enabled:  # every rank must stop together, or the others hang in the next all-reduce
                finite = _distributed.all_reduce_sum(finite, info) // info.world_size
            if not bool(finite.item()):
                optimizer.zero_grad(set_to_none=True)
                last = ckpt_dir / LAST if ckpt_dir is not None and (ckpt_dir / LAST).is_file() else None
                where = (
                    f"resume from {last} (written after epoch {epoch}) with fit(..., resume=True)"
                    if last is not None else "no checkpoint was written yet (pass checkpoint_dir= to get one)"
                )
                raise NonFiniteLossError(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {index + 1}"
                    f"{f' of {n_batches}' if n_batches else ''} (optimizer step {global_step + 1}); training stopped. "
                    f"{where}; lower the learning rate, set clip_grad_norm, or use precision='fp32'",
                    epoch=epoch + 1,
                    step=index + 1,
                    checkpoint=last,
                )
            scaled = loss / group_size
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        if stepping:
            step_optimizer()
        batch = images.shape[0]
        loss_sum += loss.detach().double() * batch
        seen += batch
        with torch.no_grad():
            if tracker is None:
                metrics = _default_metrics(logits, ignore_index)
                tracker = copy.deepcopy(metrics)
            tracker.update(logits.detach().float(), targets)
        if bar is not None:
            elapsed = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix({"loss": f"{loss.item():.4f}", "img/s": f"{seen / elapsed:.1f}"}, refresh=False)
            bar.update(1)
    pending = (index + 1) % accumulate_steps if n_batches is None else 0
    if pending:
        # A loader without a length ended inside a group: its losses were divided by accumulate_steps and, under
        # DDP, ran without gradient sync. Average the gradients over ranks, rescale to the group's real size, step.
        for parameter in model.parameters():
            if parameter.grad is not None:
                if info.enabled:
                    _distributed.all_reduce_sum(parameter.grad, info).div_(info.world_size)
                parameter.grad.mul_(accumulate_steps / pending)
        step_optimizer()
    if bar is not None:
        bar.close()
    return _reduce_stats(loss_sum, seen, tracker, info), global_step


def _reduce_stats(loss_sum: torch.Tensor, seen: int, tracker: Any, info: DistInfo) -> Dict[str, Any]:
    """Mean loss and metrics over all ranks."""
    totals = torch.stack([loss_sum.detach().double().cpu(), torch.tensor(float(seen), dtype=torch.float64)])
    if info.enabled:
        device = torch.device("cuda", torch.cuda.current_device()) if _nccl() else torch.device("cpu")
        totals = _distributed.all_reduce_sum(totals.to(device), info).cpu()
    count = int(totals[1].item())
    stats: Dict[str, Any] = {"loss": float(totals[0].item() / count) if count else float("nan"), "images": count}
    if tracker is not None:
        if info.enabled:
            tracker.sync()
        stats.update({k: _scalarize(v) for k, v in tracker.compute().items()})
    return stats


def _nccl() -> bool:
    """Whether the active process group uses NCCL (its collectives need CUDA tensors)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl"


def _evaluate_loop(
    model: nn.Module,
    loader: Iterable[Any],
    loss_fn: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
    metrics: Any,
    ignore_index: Optional[int],
    device: torch.device,
    precision: str,
    channels_last: bool,
    info: DistInfo,
    show_bar: bool,
) -> Dict[str, Any]:
    """Loss and metrics of ``model`` over ``loader`` in eval mode under ``torch.inference_mode``."""
    was_training = model.training
    model.eval()
    tracker = copy.deepcopy(metrics) if metrics is not None else None
    if tracker is not None:
        tracker.reset()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    try:
        total: Optional[int] = len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    bar = _bar(total, "validate", show_bar, leave=False)
    try:
        with torch.inference_mode():
            for images, targets in loader:
                images = _to_input(images, device, channels_last)
                targets = targets.to(device, non_blocking=True)
                with autocast(precision, device):
                    logits = model(images)
                logits = logits.float()
                if loss_fn is not None:
                    loss_sum += loss_fn(logits, targets).double() * images.shape[0]
                seen += images.shape[0]
                if tracker is None:
                    tracker = _default_metrics(logits, ignore_index)
                tracker.update(logits, targets)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    stats = _reduce_stats(loss_sum, seen, tracker, info)
    if loss_fn is None:
        stats.pop("loss")
    return stats


# ---------------------------------------------------------------------------------------------- evaluate


def evaluate(
    model: nn.Module,
    loader: Iterable[Any],
    metrics: Any = None,
    *,
    loss: Union[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor], None] = "default",
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    channels_last: Union[bool, str] = "auto",
    progress: bool = False,
) -> Dict[str, Any]:
    """Loss and metrics of ``model`` on ``loader``, in eval mode under ``torch.inference_mode``.

    In a distributed job (process group initialised, e.g. under ``torchrun`` after :func:`fit`), each rank reads
    its share of a map-style dataset and the counts are all-reduced, so every rank returns the same numbers as a
    one-process evaluation. The model's train/eval mode is restored afterwards.

    Args:
        model: Segmentation model or classifier.
        loader: Yields ``(images, targets)``.
        metrics: Metric object (see :func:`fit`); default by the shape of the logits.
        loss: ``loss(logits, targets)``; ``"default"``: cross entropy ignoring the dataset's ``ignore_index``;
            ``None``: no loss.
        device: ``"auto"`` or a torch device; the model is moved there.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (see :func:`resolve_precision`).
        channels_last: Channels-last memory format (``"auto"``: see :func:`resolve_channels_last`).
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
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    use_channels_last = resolve_channels_last(channels_last, model, device, precision)
    info = _distributed.setup(device.type) if _distributed_initialized() else DistInfo()
    if isinstance(loader, DataLoader):
        loader = _distributed.shard_loader(loader, info, train=False, seed=0)  # type: ignore[assignment]
    loss_fn = _default_loss(loader if isinstance(loader, DataLoader) else None) if loss == "default" else loss
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    model.to(device)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    ignore_index = _dataset_attr(loader, "ignore_index")
    stats = _evaluate_loop(
        model, loader, loss_fn, metrics, ignore_index, device, precision, use_channels_last, info, progress
    )
    stats.pop("images", None)
    return stats


def _distributed_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()
