"""matplotlib figures: training curves and classification grids (``pip install "encdec[plot]"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from .images import to_rgb
from .palettes import ArrayLike, PathLike

__all__ = ["plot_history", "save_classification_grid"]


def save_classification_grid(
    path: PathLike,
    images: ArrayLike,
    predicted: Sequence[int],
    targets: Sequence[int],
    class_names: Sequence[str],
    *,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    dpi: int = 100,
) -> Path:
    """A row of images, each titled with its predicted class and the true one (green when right, red when wrong).

    Args:
        path: Output image file (format by suffix).
        images: ``(N, 3, H, W)`` batch (see ``to_rgb``).
        predicted: Predicted class of each image.
        targets: True class of each image.
        class_names: Name of each class index.
        mean: Normalisation mean of the images, if any.
        std: Normalisation std of the images, if any.
        dpi: Resolution of the saved image.

    Returns:
        The path written.

    Raises:
        ImportError: matplotlib is not installed.

    Example:
        >>> import torch, tempfile, os
        >>> p = save_classification_grid(os.path.join(tempfile.mkdtemp(), "g.png"), torch.rand(2, 3, 8, 8),
        ...                              [0, 1], [0, 0], ["cat", "dog"])
        >>> p.suffix
        '.png'
    """
    Figure = _require_matplotlib()
    rgb = to_rgb(images, mean, std)
    figure = Figure(figsize=(2 * len(rgb), 2.4))
    for i, (picture, p, t) in enumerate(zip(rgb, [int(v) for v in predicted], [int(v) for v in targets])):
        axis = figure.add_subplot(1, len(rgb), i + 1)
        axis.imshow(picture)
        axis.set_title(f"{class_names[p]}\n(true: {class_names[t]})", fontsize=8, color="green" if p == t else "red")
        axis.axis("off")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi)
    return out


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _is_number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _series(history: Any) -> Dict[str, List[float]]:
    """Name -> values from a mapping of lists, a list of per-epoch dicts, or an object with ``to_dict()`` (such
    as ``encdec.History``, whose per-epoch records are under ``"epochs"``)."""
    for attr in ("to_dict", "as_dict"):
        if hasattr(history, attr):
            history = getattr(history, attr)()
            break
    else:
        if hasattr(history, "history") and not isinstance(history, Mapping):
            history = history.history
    if isinstance(history, Mapping) and isinstance(history.get("epochs"), (list, tuple)):
        history = history["epochs"]
    if isinstance(history, Mapping):
        return {str(k): [_number(x) for x in v] for k, v in history.items()
                if isinstance(v, (list, tuple)) and all(_is_number(x) for x in v)}
    if isinstance(history, (list, tuple)) and all(isinstance(r, Mapping) for r in history):
        keys = [k for r in history for k, v in r.items() if _is_number(v)]
        numeric = [k for k in dict.fromkeys(keys) if all(_is_number(r.get(k)) for r in history)]
        return {str(k): [_number(r.get(k)) for r in history] for k in numeric}
    raise TypeError(
        "history must be a mapping of name -> list of numbers, a list of per-epoch dicts, or have to_dict(); "
        f"got {type(history).__name__}"
    )


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib, which is not installed: pip install 'encdec[plot]' (or matplotlib)"
        ) from e
    return Figure


def plot_history(
    history: Any,
    path: Optional[PathLike] = None,
    keys: Optional[Sequence[str]] = None,
    *,
    best: Optional[Tuple[Optional[str], Optional[int]]] = None,
    dpi: int = 100,
) -> Any:
    """Plot training curves: one panel per quantity, train and validation lines together.

    Keys named ``train_x`` / ``val_x`` (or ``train/x``, ``val/x``) share the panel ``x``; an ``epoch`` series, when
    present, gives the x axis. Uses matplotlib's object API (no pyplot state, no display needed).

    Args:
        history: ``{"train_loss": [...], "val_miou": [...]}``, a list of per-epoch dicts, or an object with
            ``to_dict()`` (such as the History returned by ``encdec.fit``).
        path: If given, the figure is saved there (PNG, SVG, PDF by extension).
        keys: Only these series (default: every numeric series); names missing from the history are skipped
            when they are not numeric there (per-class lists), refused otherwise.
        best: ``(monitored key, epoch)``: a dotted line at that epoch in the monitored key's panel.
        dpi: Resolution of a saved raster image.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ImportError: When matplotlib is not installed (the message says how to install it).
        KeyError: A key in ``keys`` is not in the history at all.

    Example:
        >>> fig = plot_history({"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "val_miou": [0.2, 0.4]})
        >>> len(fig.axes)
        2
    """
    Figure = _require_matplotlib()
    from matplotlib.ticker import MaxNLocator

    series = _series(history)
    epochs = series.pop("epoch", None)
    if keys is not None:
        unknown = [k for k in keys if k not in series and not _known_key(history, k)]
        if unknown:
            raise KeyError(f"history has no series {unknown}; it has {sorted(series)}")
        series = {k: series[k] for k in keys if k in series}
    panels: Dict[str, List[str]] = {}
    for name in series:
        base = name
        for prefix in ("train_", "val_", "train/", "val/", "valid_", "test_"):
            if name.startswith(prefix):
                base = name[len(prefix) :]
                break
        panels.setdefault(base, []).append(name)
    monitor, best_epoch = best if best is not None else (None, None)
    n = max(1, len(panels))
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(4.0 * cols, 3.0 * rows), layout="constrained")
    for i, (base, names) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for name in names:
            values = series[name]
            xs = epochs if epochs is not None and len(epochs) == len(values) else range(1, len(values) + 1)
            ax.plot(list(xs), values, marker="o", markersize=3, label=name)
        if best_epoch is not None and monitor in names:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best ({monitor})")
        ax.set_title(base)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if path is not None:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=dpi)
    return fig


def _known_key(history: Any, key: str) -> bool:
    """Whether ``key`` names some (possibly non-numeric) entry of the history."""
    keys = getattr(history, "keys", None)
    return callable(keys) and key in list(keys())
