"""The memory layout (NCHW or channels-last) chosen by measuring both on this machine, model and input size.

Which layout is faster depends on the CPU, the model and the input size: on a 2-core AMD EPYC without native
bfloat16, channels-last ran resnet34_unet inference 1.4x faster than NCHW at 256x256 but 0.81x as fast at 64x64.
So ``channels_last="auto"`` is not a fixed rule where the answer varies (fp32 and fp16 work on the CPU): it times a
step in each layout and keeps the faster one. Where the answer is known not to vary it does not measure: conv nets
on CUDA and in bfloat16 on CPUs with native bfloat16 run channels-last, models without 2-D convolutions run NCHW.

Choices are remembered, keyed by the architecture (class and parameter shapes), the input shape, device,
precision, thread count and whether the step trains, so a model is measured once per shape: for the process, and
in ``layout-choices.json`` in encdec's cache folder (``$ENCDEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/encdec``, else
``~/.cache/encdec``) for every later process on the same machine and torch version. Two runs of one seeded script on
one machine therefore use the same layout, and compute the same numbers, even where both layouts are about
equally fast. Delete the file to measure again; pass ``channels_last=True`` or ``False`` to decide yourself.

Example:
    >>> import torch
    >>> from encdec.layout import choose_channels_last
    >>> choose_channels_last(True, torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "fp32")
    True
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable, Dict, Hashable, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from .atomic import atomic_write_json
from .batches import logits_of
from .runtime import autocast, is_conv_net

__all__ = ["LayoutProbe", "cache_file", "choose_channels_last", "known_channels_last", "measure_channels_last"]

#: Channels-last is kept only when it is faster than NCHW by more than this fraction (timing noise on a busy
#: machine is a few percent; NCHW is the format every model starts in).
MARGIN = 0.03

_CHOSEN: Dict[str, bool] = {}


def _check(channels_last: Union[bool, str]) -> None:
    if channels_last != "auto" and not isinstance(channels_last, bool):
        raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")


def known_channels_last(channels_last: Union[bool, str], model: nn.Module, device: torch.device,
                        precision: str) -> Optional[bool]:
    """The layout when no measurement is needed, else ``None``.

    Explicit ``True`` / ``False`` are returned as given. For ``"auto"``: ``False`` for models without 2-D
    convolutions; ``True`` for conv nets on CUDA (cuDNN's mixed-precision kernels are NHWC) and in ``bf16`` on the
    CPU (oneDNN's bfloat16 convolutions: 1.75x over fp32 for resnet34_unet inference against 1.46x for NCHW bf16);
    ``None`` otherwise (fp32 on the CPU, MPS), where the faster layout depends on the machine and the input size.

    Raises:
        ValueError: ``channels_last`` is not ``True``, ``False`` or ``"auto"``.

    Example:
        >>> known_channels_last("auto", torch.nn.Linear(3, 8), torch.device("cpu"), "fp32")
        False
    """
    _check(channels_last)
    if isinstance(channels_last, bool):
        return channels_last
    if not is_conv_net(model):
        return False
    if device.type == "cuda" or (device.type == "cpu" and precision == "bf16"):
        return True
    return None


def _key(model: nn.Module, shape: Sequence[int], device: torch.device, precision: str, train: bool) -> Hashable:
    architecture = (type(model).__qualname__,) + tuple(tuple(p.shape) for p in model.parameters())
    digest = hashlib.sha1(repr(architecture).encode()).hexdigest()[:16]
    shape_text = "x".join(str(int(s)) for s in shape)
    return (f"{type(model).__qualname__}-{digest}|{shape_text}|{device}|{precision}|"
            f"{'train' if train else 'infer'}|{torch.get_num_threads()} threads")


def cache_file() -> Path:
    """Where measured layout choices are kept for later processes (see the module's description).

    Example:
        >>> cache_file().name
        'layout-choices.json'
    """
    folder = os.environ.get("ENCDEC_CACHE_DIR")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "encdec")
    return Path(folder) / "layout-choices.json"


@functools.lru_cache(maxsize=1)
def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''} {_cpu_model()} torch {torch.__version__}".strip()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _stored() -> Dict[str, bool]:
    path = cache_file()
    try:
        stamp = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return {}
    if _READ[0] != stamp:
        _READ[:] = [stamp, _parse(path)]
    return _READ[1]


_READ: list = [None, {}]  # (path, mtime) of the file last read, and its choices for this machine


def _parse(path: Path) -> Dict[str, bool]:
    try:
        document = json.loads(path.read_text())
        choices = document.get(_machine(), {}) if isinstance(document, dict) else {}
        return {k: v for k, v in choices.items() if isinstance(v, bool)} if isinstance(choices, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(key: str, choice: bool) -> None:
    """Keep a measured choice for this process and, when the cache folder is writable, for later ones."""
    _CHOSEN[key] = choice
    path = cache_file()
    try:
        try:
            document = json.loads(path.read_text())
            document = document if isinstance(document, dict) else {}
        except (OSError, ValueError):
            document = {}
        document.setdefault(_machine(), {})[key] = choice
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(document, path)
    except OSError:
        pass  # a read-only home: the choice lives for this process only


def _recall(key: str) -> Optional[bool]:
    if key not in _CHOSEN:
        stored = _stored().get(key)  # type: ignore[call-overload]
        if stored is None:
            return None
        _CHOSEN[key] = stored
    return _CHOSEN[key]


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
    """Resolve ``channels_last`` for one model and input shape, measuring where the answer varies.

    See ``known_channels_last`` for the cases decided without measuring. Otherwise, with an input ``shape`` the
    two layouts are timed once per process (``measure_channels_last``) and the result is remembered; without
    one, NCHW is kept.

    Args:
        channels_last: ``True``, ``False`` or ``"auto"``.
        model: The model, on ``device``.
        device: Where it runs.
        precision: Resolved precision.
        shape: Input batch shape ``(N, C, H, W)``; ``None`` when unknown.
        train: Whether the layout is for training steps.

    Returns:
        Whether to use channels-last.

    Raises:
        ValueError: ``channels_last`` is not ``True``, ``False`` or ``"auto"``.

    Example:
        >>> import torch
        >>> choose_channels_last("auto", torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "bf16")
        True
    """
    known = known_channels_last(channels_last, model, device, precision)
    if known is not None:
        return known
    if shape is None or len(shape) != 4:
        return False
    key = _key(model, shape, device, precision, train)
    chosen = _recall(key)  # type: ignore[arg-type]
    if chosen is None:
        chosen = measure_channels_last(model, shape, device, precision, train=train)
        _remember(key, chosen)  # type: ignore[arg-type]
    return chosen


class LayoutProbe:
    """Picks the inference layout while real batches run: no extra forward passes.

    For each input shape whose layout is not known, the first four batches of that shape alternate NCHW,
    channels-last, NCHW, channels-last; the last two are timed and decide the layout for the rest (and for later
    calls in this process). Outputs of every batch are kept, so measuring costs nothing; the layouts give the same
    results up to float rounding. Shapes seen fewer than four times use channels-last from 128x128 pixels up and
    NCHW below (the measured crossover for U-Nets on the CPU).

    Args:
        channels_last: ``True``, ``False`` or ``"auto"``.
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
        self.known = known_channels_last(channels_last, model, device, precision)
        self.model, self.device, self.precision = model, device, precision
        self._times: Dict[Tuple[int, ...], list] = {}

    def run(self, shape: Sequence[int], call: Callable[[bool], object], *, measurable: bool = True) -> object:
        """Run ``call(channels_last)`` for one batch of ``shape`` in the layout chosen (or being tried) for it;
        ``measurable=False`` (fewer than four batches of this shape to come) uses ``fallback`` instead."""
        if self.known is not None:
            return call(self.known)
        key = _key(self.model, shape, self.device, self.precision, False)
        if _recall(key) is not None or not measurable:  # type: ignore[arg-type]
            return call(self.fallback(shape))
        times = self._times.setdefault(tuple(shape), [])
        layout = len(times) % 2 == 1
        _synchronize(self.device)
        started = time.perf_counter()
        result = call(layout)
        _synchronize(self.device)
        times.append(time.perf_counter() - started)
        if len(times) == 4:
            _remember(key, _faster(times[2], times[3]))  # type: ignore[arg-type]
        return result

    def fallback(self, shape: Sequence[int]) -> bool:
        """The layout for a shape with too few batches to measure."""
        if self.known is not None:
            return self.known
        chosen = _recall(_key(self.model, shape, self.device, self.precision, False))  # type: ignore[arg-type]
        if chosen is not None:
            return chosen
        return len(shape) == 4 and shape[-1] * shape[-2] >= 128 * 128
