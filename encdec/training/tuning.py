"""``tune``: time both memory layouts once, and get the choice to pass to later runs as ``channels_last=``."""

from __future__ import annotations

from typing import Any, Sequence, Tuple, Union

import torch
from torch import nn

from ..input_spec import input_spec_of
from ..layout import measure_channels_last
from ..runtime import is_conv_net, resolve_device, resolve_precision
from ._data import batch_shape

__all__ = ["tune"]


def tune(
    model: nn.Module,
    data: Union[torch.Tensor, Sequence[int], Any],
    *,
    train: bool,
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    repeats: int = 3,
) -> bool:
    """Time ``model`` in the NCHW and channels-last memory layouts on this machine; whether channels-last is faster.

    ``channels_last="auto"`` follows a fixed rule (``encdec.runtime.channels_last_rule``) so results never
    depend on a stopwatch. Where you want the layout measured on your machine, model and input size instead,
    measure once with ``tune`` and pass the answer on: ``fit(..., channels_last=encdec.tune(model, loader,
    train=True))``. Keep the returned value (in your config or script) to make later runs repeat exactly.

    A copy of the model is timed (a forward and backward step in training mode for ``train=True``, a forward
    pass under ``torch.inference_mode`` otherwise), each layout after one warm-up step, alternating; the model,
    its gradients and torch's random generators are left as they were. Channels-last must be more than 3%
    faster to be chosen. Models without 2-D convolutions are not timed (``False``).

    Args:
        model: The model.
        data: What it will run on: a DataLoader (its batch shape, as ``encdec.fit`` sees it), a batch tensor
            ``(N, C, H, W)``, or such a shape. Heights and widths are rounded up to the model's size rule, as
            ``encdec.predict`` pads them.
        train: Time training steps (for ``encdec.fit``) rather than inference (for ``encdec.predict``
            and ``encdec.evaluate``).
        device: ``"auto"`` or a torch device, as passed to ``fit`` / ``predict``.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``, as passed to ``fit`` / ``predict``.
        repeats: Timed steps per layout.

    Returns:
        ``True`` when channels-last is faster: pass it as ``channels_last=``.

    Raises:
        ValueError: ``data`` gives no ``(N, C, H, W)`` shape, or ``repeats`` is not positive.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> choice = encdec.tune(model, torch.randn(2, 3, 64, 64), train=False, device="cpu")
        >>> encdec.predict(model, torch.randn(2, 3, 64, 64), channels_last=choice).shape
        torch.Size([2, 64, 64])
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    shape = _shape(model, data)
    if not is_conv_net(model):
        return False
    return measure_channels_last(model, shape, device, precision, train=train, repeats=repeats)


def _shape(model: nn.Module, data: Any) -> Tuple[int, ...]:
    """The ``(N, C, H, W)`` batch shape ``data`` stands for, with sides padded to the model's size rule."""
    if isinstance(data, torch.Tensor):
        shape: Any = tuple(data.shape)
    elif isinstance(data, (tuple, list, torch.Size)) and all(isinstance(s, int) for s in data):
        shape = tuple(int(s) for s in data)
    else:
        shape = batch_shape(data)
    if shape is None or len(shape) != 4:
        raise ValueError("tune: data must be a DataLoader of (images, targets) batches, a batch tensor (N, C, H, W) "
                         f"or such a shape; got {type(data).__name__}"
                         + (f" of shape {tuple(shape)}" if shape is not None else ""))
    spec = input_spec_of(model)
    if spec is not None and spec.fixed is None:
        shape = shape[:2] + (spec.valid_size(shape[2]), spec.valid_size(shape[3]))
    return shape
