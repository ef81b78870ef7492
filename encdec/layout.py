"""Timing both memory layouts (NCHW and channels-last), for the explicit ``channels_last="measure"``.

``channels_last="auto"`` never measures: it follows ``encdec.runtime.channels_last_rule``, a fixed rule from
the device, the precision, whether the net is convolutional, the CPU's class and the input size, so a seeded
script computes the same numbers however busy the machine is. Which layout is faster can still vary with the CPU,
the model and the input size; to find out on the machine at hand, ask for a measurement:

* ``fit(..., channels_last="measure")`` times a training step of a copy of the model in each layout on a batch
  of the training data's shape (``measure_channels_last``) and keeps the faster; the choice is saved in the
  checkpoint, so a resumed run uses it again;
* ``predict(..., channels_last="measure")`` times its first four batches of each shape in alternating layouts
  (``LayoutProbe``; their outputs are kept);
* ``encdec.tune`` measures once and returns the choice, to pass as ``channels_last=True`` / ``False`` to later
  runs, which are then reproducible again.

Measured choices are remembered for the process only (keyed by the architecture, input shape, device, precision,
thread count and whether the step trains); nothing is written to disk, so no file changes any result.

Example:
    >>> import torch
    >>> from encdec.layout import choose_channels_last
    >>> choose_channels_last(True, torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "fp32")
    True
"""

from __future__ import annotations

import copy
import hashlib
import time
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .batches import logits_of
from .runtime import autocast, check_channels_last, is_conv_net, resolve_channels_last

__all__ = ["LayoutProbe", "choose_channels_last", "measure_channels_last"]

#: Channels-last is kept only when it is faster than NCHW by more than this fraction (timing noise on a busy
#: machine is a few percent; NCHW is the format every model starts in).
MARGIN = 0.03

_CHOSEN: Dict[str, bool] = {}  # measured choices of this process


def _key(model: nn.Module, shape: Sequence[int], device: torch.device, precision: str, train: bool) -> str:
    architecture = (type(model).__qualname__,) + tuple(tuple(p.shape) for p in model.parameters())
    digest = hashlib.sha1(repr(architecture).encode()).hexdigest()[:16]
    shape_text = "x".join(str(int(s)) for s in shape)
    return (f"{type(model).__qualname__}-{digest}|{shape_text}|{device}|{precision}|"
            f"{'train' if train else 'infer'}|{torch.get_num_threads()} threads")


def _faster(nchw: float, nhwc: float) -> bool:
    return nhwc < nchw * (1.0 - MARGIN)


def measure_channels_last(model: nn.Module, shape: Sequence[int], device: torch.device, precision: str, *,
                          train: bool, repeats: int = 2) -> bool:
    """Time one step of ``model`` on a random batch of ``shape`` in each layout; whether channels-last is faster.

    A copy of the model is timed, so the model's weights, BatchNorm statistics and gradients are untouched, and
    torch's global random generator is left as it was. Training steps are a forward and a backward pass; each
    layout gets one untimed warm-up step, then ``repeats`` timed steps alternating with the other layout.
    Channels-last must win by more than 3% (``MARGIN``).

    Args:
        model: The model (on ``device``).
        shape: The input batch shape ``(N, C, H, W)``.
        device: Where it runs.
        precision: Resolved precision (``"fp32"``, ``"bf16"``, ``"fp16"``).
        train: Time training steps (forward and backward, training mode) instead of inference.
        repeats: Timed steps per layout.

    Returns:
        ``True`` when channels-last is faster.

    Example:
        >>> import torch
        >>> model = torch.nn.Conv2d(3, 4, 3)
        >>> measure_channels_last(model, (1, 3, 16, 16), torch.device("cpu"), "fp32", train=False) in (True, False)
        True
    """
    with torch.random.fork_rng(devices=[]):
        probe = copy.deepcopy(model).to(device)
        probe.train(train)
        x = torch.randn(*shape, device=device)

        def step(layout: torch.memory_format) -> float:
            probe.to(memory_format=layout)
            xi = x.contiguous(memory_format=layout)
            _synchronize(device)
            started = time.perf_counter()
            if train:
                with autocast(precision, device):
                    out = probe(xi)
                logits_of(out, "the layout measurement").float().mean().backward()
                probe.zero_grad(set_to_none=True)
            else:
                with torch.inference_mode(), autocast(precision, device):
                    probe(xi)
            _synchronize(device)
            return time.perf_counter() - started

        step(torch.contiguous_format)
        step(torch.channels_last)
        totals = {torch.contiguous_format: 0.0, torch.channels_last: 0.0}
        for index in range(repeats):
            order = (torch.contiguous_format, torch.channels_last)
            for layout in order if index % 2 == 0 else order[::-1]:
                totals[layout] += step(layout)
    return _faster(totals[torch.contiguous_format], totals[torch.channels_last])


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def choose_channels_last(channels_last: Union[bool, str], model: nn.Module, device: torch.device, precision: str,
                         shape: Optional[Sequence[int]] = None, *, train: bool = False) -> bool:
    """Resolve ``channels_last`` for one model and input shape; only ``"measure"`` times anything.

    ``True`` / ``False`` are returned as given and ``"auto"`` follows ``encdec.runtime.channels_last_rule``.
    ``"measure"`` times the two layouts (``measure_channels_last``) once per process for each architecture and
    shape; without a 4-D input ``shape`` there is nothing to time, and the rule decides.

    Args:
        channels_last: ``True``, ``False``, ``"auto"`` or ``"measure"``.
        model: The model, on ``device``.
        device: Where it runs.
        precision: Resolved precision.
        shape: Input batch shape ``(N, C, H, W)``; ``None`` when unknown.
        train: Whether the layout is for training steps.

    Returns:
        Whether to use channels-last.

    Raises:
        ValueError: ``channels_last`` is not ``True``, ``False``, ``"auto"`` or ``"measure"``.

    Example:
        >>> import torch
        >>> choose_channels_last("auto", torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "bf16")
        True
    """
    check_channels_last(channels_last)
    if channels_last != "measure" or shape is None or len(shape) != 4 or not is_conv_net(model):
        return resolve_channels_last("auto" if channels_last == "measure" else channels_last, model, device,
                                     precision, train=train, shape=shape)
    key = _key(model, shape, device, precision, train)
    chosen = _CHOSEN.get(key)
    if chosen is None:
        chosen = measure_channels_last(model, shape, device, precision, train=train)
        _CHOSEN[key] = chosen
    return chosen


class LayoutProbe:
    """Applies the inference layout batch by batch; for ``"measure"``, picks it while real batches run.

    With ``True``, ``False`` or ``"auto"`` every batch runs in the layout ``choose_channels_last`` gives for its
    shape (for ``"auto"``: ``encdec.runtime.channels_last_rule``). With ``"measure"``, the first four batches of
    each shape alternate NCHW, channels-last, NCHW, channels-last; the last two are timed and decide the layout for
    the rest (and for later calls in this process). Outputs of every batch are kept, so measuring costs no extra
    forward passes; the layouts give the same results up to float rounding. Shapes seen fewer than four times
    follow the rule.

    Args:
        channels_last: ``True``, ``False``, ``"auto"`` or ``"measure"``.
        model: The model the batches run through.
        device: Where it runs.
        precision: Resolved precision.

    Example:
        >>> import torch
        >>> probe = LayoutProbe(True, torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "fp32")
        >>> probe.run((1, 3, 8, 8), lambda channels_last: channels_last)
        True
    """

    def __init__(self, channels_last: Union[bool, str], model: nn.Module, device: torch.device,
                 precision: str) -> None:
        check_channels_last(channels_last)
        self.measuring = channels_last == "measure" and is_conv_net(model)
        self.channels_last = "auto" if channels_last == "measure" else channels_last
        self.model, self.device, self.precision = model, device, precision
        self._times: Dict[Tuple[int, ...], list] = {}

    def run(self, shape: Sequence[int], call: Callable[[bool], object], *, measurable: bool = True) -> object:
        """Run ``call(channels_last)`` for one batch of ``shape`` in the layout chosen (or being tried) for it;
        ``measurable=False`` (fewer than four batches of this shape to come) uses ``fallback`` instead."""
        if not self.measuring or not measurable or len(shape) != 4:
            return call(self.fallback(shape))
        key = _key(self.model, shape, self.device, self.precision, False)
        if _CHOSEN.get(key) is not None:
            return call(self.fallback(shape))
        times = self._times.setdefault(tuple(shape), [])
        layout = len(times) % 2 == 1
        _synchronize(self.device)
        started = time.perf_counter()
        result = call(layout)
        _synchronize(self.device)
        times.append(time.perf_counter() - started)
        if len(times) == 4:
            _CHOSEN[key] = _faster(times[2], times[3])
        return result

    def fallback(self, shape: Sequence[int]) -> bool:
        """The layout for a batch of ``shape`` that is not (or no longer) being timed: the measured choice where
        there is one, else ``channels_last`` as given or by the rule."""
        if self.measuring and len(shape) == 4:
            chosen = _CHOSEN.get(_key(self.model, shape, self.device, self.precision, False))
            if chosen is not None:
                return chosen
        return resolve_channels_last(self.channels_last, self.model, self.device, self.precision, train=False,
                                     shape=shape)
