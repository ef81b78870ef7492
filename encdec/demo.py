"""``encdec demo``: train a small U-Net on ``SyntheticShapes`` and show that it learned.

The demo needs no files and no network. It builds a U-Net, measures it on held-out images, trains it with
``encdec.training.fit`` (on the CPU, a minute or two on two cores), measures it again, and writes into the
output folder:

* ``metrics.json``: the scores before and after training (``miou`` is the final mean IoU), timings, settings;
* ``history.json`` and ``history.png``: the per-epoch record and its curves;
* ``predictions.png``: held-out images | ground truth | prediction;
* ``unet_shapes.safetensors``: the trained weights with their metadata.

It then rebuilds the model from the ``.safetensors`` file alone with ``encdec.from_pretrained`` and checks
that the reloaded model predicts exactly the same labels. A demo that does not reach its mean-IoU goal, or whose
reload differs, fails with ``DemoError``.

Example:
    >>> from encdec.demo import run_demo
    >>> import tempfile
    >>> result = run_demo(tempfile.mkdtemp(), quick=True, progress=False, log=lambda line: None)
    >>> sorted(result)[:3], result["miou"] > result["miou_before"]  # quick: a smoke run, learning a little
    (['after', 'before', 'config'], True)
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch.utils.data import DataLoader, TensorDataset

from . import viz
from ._json import jsonable
from .atomic import atomic_write_json
from .datasets import SyntheticShapes
from .inference import predict
from .models import unet
from .pretrained import from_pretrained
from .training import evaluate, fit, seed_everything
from .weights import save_weights

__all__ = ["DemoConfig", "DemoError", "FULL", "QUICK", "run_demo", "format_scores", "with_overrides"]

PathLike = Union[str, "os.PathLike[str]"]


class DemoError(RuntimeError):
    """The demo ran but did not show what it promises (learning, or an identical reload)."""


@dataclass(frozen=True)
class DemoConfig:
    """The demo's settings.

    Attributes:
        size: Side of the square images.
        num_classes: Classes including background (3: background, circle, square).
        train_images: Training images (drawn once, kept in memory).
        val_images: Held-out images for the before/after scores.
        widths: Channels of the U-Net's five levels.
        epochs: Training epochs.
        batch_size: Images per step.
        lr: Peak learning rate of the one-cycle schedule (AdamW).
        goal_miou: Mean IoU the trained model must reach (``None``: no check).

    Example:
        >>> QUICK.size
        32
    """

    size: int = 64
    num_classes: int = 3
    train_images: int = 640
    val_images: int = 96
    widths: Tuple[int, int, int, int, int] = (8, 16, 32, 64, 128)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-2
    goal_miou: Optional[float] = 0.8


#: The full demo (a minute or two on two CPU cores).
FULL = DemoConfig()
#: A seconds-long smoke run (``encdec demo --quick``): the same steps at tiny sizes. It learns a little (mIoU
#: about 0.08 -> 0.28) but has no mIoU goal; it checks that every step works, not that the model is good.
QUICK = DemoConfig(size=32, train_images=96, val_images=16, widths=(4, 8, 16, 32, 64), epochs=3, batch_size=16,
                   goal_miou=None)

_SHOWN = ("pixel_accuracy", "mean_accuracy", "miou", "dice")


def _materialize(dataset: Any) -> TensorDataset:
    """Draw every item once: training then re-reads tensors instead of re-drawing shapes each epoch."""
    images, masks = zip(*(dataset[i] for i in range(len(dataset))))
    return TensorDataset(torch.stack(images), torch.stack(masks))


def _scores(stats: Dict[str, Any]) -> Dict[str, Any]:
    return jsonable(stats, finite=True)


def format_scores(before: Dict[str, Any], after: Dict[str, Any]) -> str:
    """A small before/after table of the headline scores.

    Example:
        >>> print(format_scores({"miou": 0.1}, {"miou": 0.9}))
        metric            before   after
        miou              0.1000  0.9000
    """
    lines = [f"{'metric':<16}{'before':>8}{'after':>8}"]
    for key in _SHOWN:
        if key in before or key in after:
            b, a = before.get(key), after.get(key)
            fmt = (lambda v: f"{v:8.4f}" if isinstance(v, (int, float)) else f"{'-':>8}")  # noqa: E731
            lines.append(f"{key:<16}{fmt(b)}{fmt(a)}")
    return "\n".join(lines)


def run_demo(
    out: PathLike = "demo-output",
    *,
    quick: bool = False,
    config: Optional[DemoConfig] = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Dict[str, Any]:
    """Train a U-Net on synthetic shapes, report before/after scores, save, reload and compare.

    Args:
        out: Output folder (created).
        quick: Use ``QUICK`` (seconds, no mIoU goal) instead of ``FULL``.
        config: Explicit settings (overrides ``quick``).
        seed: Seed of weights, data order and augmentation-free data drawing.
        device: ``"cpu"`` (the documented timing), ``"auto"`` or any torch device.
        progress: Per-epoch lines from ``fit``.
        log: Where the demo's own lines go.

    Returns:
        The content of ``metrics.json``: ``before`` / ``after`` score dicts, ``miou``, ``miou_before``,
        ``seconds``, ``files`` and ``config``.

    Raises:
        DemoError: The trained model missed ``config.goal_miou`` or the reloaded weights predict differently.

    Example:
        >>> result = run_demo("demo-output")  # doctest: +SKIP
        >>> result["miou"] >= 0.8, result["reload_identical"]  # doctest: +SKIP
        (True, True)
    """
    cfg = config if config is not None else (QUICK if quick else FULL)
    started = time.perf_counter()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)

    # 1. Data: shapes drawn from a seed (train and held-out sets use different seeds).
    seed_everything(seed)
    train_set = SyntheticShapes(n=cfg.train_images, size=cfg.size, num_classes=cfg.num_classes, seed=seed)
    val_set = SyntheticShapes(n=cfg.val_images, size=cfg.size, num_classes=cfg.num_classes, seed=seed + 1000)
    # drop_last keeps BatchNorm away from a trailing batch of one, when there is more than one batch
    train_loader = DataLoader(_materialize(train_set), batch_size=cfg.batch_size, shuffle=True,
                              drop_last=cfg.train_images > cfg.batch_size)
    val_loader = DataLoader(_materialize(val_set), batch_size=64)
    log(f"data: {cfg.train_images} training and {cfg.val_images} held-out {cfg.size}x{cfg.size} images, "
        f"classes {', '.join(train_set.class_names)}")

    # 2. Model, scored before training.
    model = unet(num_classes=cfg.num_classes, widths=cfg.widths)
    params = sum(p.numel() for p in model.parameters())
    log(f"model: unet(widths={tuple(cfg.widths)}), {params:,} parameters, on {device}")
    before = _scores(evaluate(model, val_loader, device=device, precision="fp32"))
    log(f"before training: mIoU {before['miou']:.4f}, pixel accuracy {before['pixel_accuracy']:.4f}")

    # 3. Training with fit: AdamW and a one-cycle schedule.
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * len(train_loader), pct_start=0.25
    )
    train_started = time.perf_counter()
    history = fit(model, train_loader, val_loader, epochs=cfg.epochs, optimizer=optimizer, scheduler=scheduler,
                  device=device, precision="fp32", seed=seed, progress=progress)
    train_seconds = time.perf_counter() - train_started
    after = _scores(evaluate(model, val_loader, device=device, precision="fp32"))
    log(f"after {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''} ({train_seconds:.0f} s): mIoU {after['miou']:.4f}, "
        f"pixel accuracy {after['pixel_accuracy']:.4f}")

    # 4. Pictures and records.
    files = {"history": history.save_json(folder / "history.json")}
    try:
        files["history_plot"] = history.plot(folder / "history.png")
    except ImportError as error:  # matplotlib is optional
        log(f"history.png skipped: {error}")
    images, masks = next(iter(val_loader))
    images, masks = images[:6], masks[:6]
    preds = predict(model, images, device=device, precision="fp32")
    files["predictions"] = viz.save_prediction_grid(
        folder / "predictions.png", images, masks, preds, palette="shapes", mean=train_set.mean, std=train_set.std,
        class_names=train_set.class_names,
    )

    # 5. Save, rebuild from the file alone, and compare every held-out prediction.
    weights = folder / "unet_shapes.safetensors"
    save_weights(model, weights, class_names=train_set.class_names, mean=train_set.mean, std=train_set.std)
    files["weights"] = weights
    reloaded = from_pretrained(weights)
    all_images = val_loader.dataset.tensors[0]
    identical = torch.equal(predict(model, all_images, device=device, precision="fp32"),
                            predict(reloaded, all_images, device=device, precision="fp32"))

    result: Dict[str, Any] = {
        "miou": after["miou"],
        "miou_before": before["miou"],
        "before": before,
        "after": after,
        "reload_identical": identical,
        "train_seconds": round(train_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "device": device,
        "threads": torch.get_num_threads(),
        "files": {k: str(v) for k, v in files.items()},
        "config": {**asdict(cfg), "widths": list(cfg.widths), "seed": seed},
    }
    atomic_write_json(result, folder / "metrics.json")
    log("")
    log(format_scores(before, after))
    log("")
    log(f"reloaded {weights.name}: {'identical predictions' if identical else 'PREDICTIONS DIFFER'} "
        f"on {len(all_images)} held-out images")
    log(f"wrote {folder}/: {', '.join(Path(p).name for p in ['metrics.json', *files.values()])}")
    log(f"total {result['seconds']:.0f} s")
    if cfg.goal_miou is None:
        log(f"a smoke run with no quality goal: it checks that every step works at tiny sizes, not that the model "
            f"is good (plain `encdec demo` trains until mIoU >= {FULL.goal_miou} and fails below it)")
    if not identical:
        raise DemoError(f"the model reloaded from {weights} predicts differently from the trained model")
    if cfg.goal_miou is not None and not after["miou"] >= cfg.goal_miou:
        raise DemoError(
            f"mIoU after training is {after['miou']:.4f}, below the demo's goal of {cfg.goal_miou}; "
            "see history.png in the output folder"
        )
    return result


def with_overrides(config: DemoConfig, **changes: Any) -> DemoConfig:
    """A copy of ``config`` with the given fields replaced (``None`` values are ignored).

    Example:
        >>> with_overrides(FULL, epochs=2, lr=None).epochs
        2
    """
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
