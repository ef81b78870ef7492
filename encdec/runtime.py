"""How to run a model: the device, the precision, the memory format and the autocast context, in one place.

``encdec.fit``, ``encdec.evaluate``, ``encdec.predict``, the exporters and the command line all
resolve ``device="auto"``, ``precision="auto"`` and ``channels_last="auto"`` through these functions, so one
machine gets one answer everywhere, decided from what is known before anything runs (never by timing).

Example:
    >>> import torch
    >>> from encdec import runtime
    >>> device = runtime.resolve_device("cpu")
    >>> runtime.resolve_precision("fp32", device)
    'fp32'
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Optional, Sequence, Union

import torch
from torch import nn

__all__ = [
    "CPU_CLASSES",
    "PRECISIONS",
    "autocast",
    "channels_last_rule",
    "check_channels_last",
    "compile_module",
    "cpu_class",
    "cpu_supports_bf16",
    "is_conv_net",
    "resolve_channels_last",
    "resolve_device",
    "resolve_precision",
    "to_model_input",
]

#: The precisions every ``precision=`` argument accepts.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")

DeviceLike = Union[str, torch.device, None]


def resolve_device(device: DeviceLike = "auto") -> torch.device:
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
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
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
    ``encdec.fit``), ``"bf16"`` on CPUs with native bfloat16 (AVX512-BF16 or AMX), and ``"fp32"`` otherwise.

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
        raise ValueError(f"precision='fp16' needs a CUDA device (got {device.type}); use 'bf16' on CPU or 'fp32'")
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


def is_conv_net(model: nn.Module) -> bool:
    """Whether ``model`` holds 2-D (transposed) convolutions, the layers the channels-last format speeds up.

    Example:
        >>> is_conv_net(torch.nn.Conv2d(3, 8, 3)), is_conv_net(torch.nn.Linear(3, 8))
        (True, False)
    """
    return any(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())


#: CPU classes, from the most capable: native bfloat16 (AVX512-BF16 or AMX), AVX-512, AVX2, anything else.
CPU_CLASSES = ("native-bf16", "avx512", "avx2", "other")

#: Inference inputs of at least this many pixels (H x W) run channels-last in fp32 on the CPU: resnet34_unet
#: inference on a 2-core AVX2 EPYC ran x1.4 faster in channels-last at 256x256 but x0.81 as fast at 64x64, and the
#: U-Nets' crossover lay near 128x128.
CPU_INFERENCE_PIXELS = 128 * 128

#: Training inputs of at least this many pixels run channels-last in fp32 on AVX-512 CPUs: the U-Nets trained
#: x1.05-x1.14 faster in channels-last at 256x256 on a 2-core AVX-512 EPYC (with native bf16, in fp32), and slower
#: at 64x64. On an AVX2 EPYC NCHW trained faster at both sizes (channels-last took 1.10-1.28x NCHW's time), so
#: AVX2 CPUs always train NCHW.
CPU_TRAINING_PIXELS = 256 * 256


def cpu_class() -> str:
    """This CPU's class for the layout rule: ``"native-bf16"``, ``"avx512"``, ``"avx2"`` or ``"other"``.

    ``"native-bf16"`` when ``cpu_supports_bf16``; otherwise from ``torch.backends.cpu.get_cpu_capability()``
    (the vector instructions torch's own CPU kernels use): ``"AVX512"`` or ``"AVX2"``, and ``"other"`` for
    anything else (ARM, POWER, s390x, or an x86 CPU without AVX2).

    Example:
        >>> cpu_class() in CPU_CLASSES
        True
    """
    if cpu_supports_bf16():
        return "native-bf16"
    try:
        capability = str(torch.backends.cpu.get_cpu_capability()).upper()
    except Exception:  # noqa: BLE001 - an old torch or an unknown CPU: no class to go by
        return "other"
    if capability.startswith("AVX512"):
        return "avx512"
    if capability == "AVX2":
        return "avx2"
    return "other"


def check_channels_last(channels_last: Any) -> None:
    """Refuse a ``channels_last=`` value other than ``True``, ``False``, ``"auto"`` or ``"measure"``.

    Raises:
        ValueError: ``channels_last`` is not one of those.

    Example:
        >>> check_channels_last("measure")
    """
    if not isinstance(channels_last, bool) and channels_last not in ("auto", "measure"):
        raise ValueError(f"channels_last must be True, False, 'auto' or 'measure', got {channels_last!r}")


def channels_last_rule(model: nn.Module, device: torch.device, precision: str, *, train: bool,
                       shape: Optional[Sequence[int]] = None, cpu: Optional[str] = None) -> bool:
    """The memory layout ``channels_last="auto"`` picks: a fixed rule, never a measurement.

    | Device | Precision | Step | CPU class and input ``(N, C, H, W)`` | Layout |
    | --- | --- | --- | --- | --- |
    | any (model without 2-D convolutions) | any | any | any | NCHW |
    | CUDA | any | any | any | channels-last |
    | CPU | bf16 | any | any | channels-last |
    | CPU | fp32 | training | AVX-512 or native bf16, H x W >= 256 x 256 | channels-last |
    | CPU | fp32 | training | AVX2 or other CPUs; smaller or unknown inputs | NCHW |
    | CPU | fp32 | inference | any CPU, H x W >= 128 x 128, or size unknown | channels-last |
    | CPU | fp32 | inference | any CPU, H x W < 128 x 128 | NCHW |
    | MPS and other devices | any | any | any | NCHW |

    Why: cuDNN's mixed-precision convolutions are NHWC, and oneDNN's bfloat16 convolutions run fastest in it
    (resnet34_unet inference x1.75 over fp32 against x1.46 for NCHW bf16). In fp32 on the CPU the measurements
    in ``docs/performance.md`` give the rest (``CPU_INFERENCE_PIXELS``, ``CPU_TRAINING_PIXELS``). The
    answer depends only on what is known before anything runs, so the same script on the same kind of machine
    always runs in the same layout and computes the same numbers; to time both layouts on the machine at hand,
    pass ``channels_last="measure"`` or use ``encdec.tune``.

    Args:
        model: The model (only whether it holds 2-D convolutions matters).
        device: Where it runs.
        precision: Resolved precision (``"fp32"``, ``"bf16"``, ``"fp16"``).
        train: Whether the layout is for training steps (else inference).
        shape: The input batch shape ``(N, C, H, W)``, when known.
        cpu: The CPU class (one of ``CPU_CLASSES``); default: this machine's (``cpu_class``).

    Returns:
        Whether to use channels-last.

    Example:
        >>> conv = torch.nn.Conv2d(3, 8, 3)
        >>> channels_last_rule(conv, torch.device("cpu"), "fp32", train=True, shape=(8, 3, 64, 64))
        False
        >>> channels_last_rule(conv, torch.device("cpu"), "fp32", train=False, shape=(1, 3, 256, 256))
        True
    """
    if not is_conv_net(model):
        return False
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    if precision == "bf16":
        return True
    pixels = int(shape[-1]) * int(shape[-2]) if shape is not None and len(shape) == 4 else None
    if train:
        cpu = cpu_class() if cpu is None else cpu
        return cpu in ("native-bf16", "avx512") and pixels is not None and pixels >= CPU_TRAINING_PIXELS
    return pixels is None or pixels >= CPU_INFERENCE_PIXELS


def resolve_channels_last(channels_last: Union[bool, str], model: nn.Module, device: torch.device, precision: str,
                          *, train: bool = False, shape: Optional[Sequence[int]] = None) -> bool:
    """Whether to use the channels-last memory format: ``True`` / ``False`` as given, ``"auto"`` by
    ``channels_last_rule``.

    ``encdec.fit``, ``encdec.evaluate``, ``encdec.predict`` and
    ``encdec.optimize_for_inference`` all decide ``"auto"`` through this one function. ``"measure"`` (time
    both layouts) is resolved by ``encdec.layout.choose_channels_last``, which those functions call.

    Raises:
        ValueError: ``channels_last`` is not ``True``, ``False`` or ``"auto"`` (``"measure"`` is refused here).

    Example:
        >>> resolve_channels_last("auto", torch.nn.Conv2d(3, 8, 3), torch.device("cpu"), "bf16")
        True
    """
    check_channels_last(channels_last)
    if channels_last == "measure":
        raise ValueError("channels_last='measure' times both layouts: resolve it with "
                         "encdec.layout.choose_channels_last (fit, evaluate and predict do)")
    if isinstance(channels_last, bool):
        return channels_last
    return channels_last_rule(model, device, precision, train=train, shape=shape)


def to_model_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move a batch to ``device`` and, for 4-D batches when asked, into the channels-last memory format.

    Example:
        >>> to_model_input(torch.zeros(1, 3, 4, 4), torch.device("cpu"), True).is_contiguous(
        ...     memory_format=torch.channels_last)
        True
    """
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _compile_errors() -> tuple:
    errors = []
    for module, name in (("torch._dynamo.exc", "TorchDynamoException"), ("torch._inductor.exc", "InductorError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


class _CompiledOrEager(nn.Module):
    """A compiled module that falls back to the eager one, with one warning, if compiling fails; other
    attributes (``no_sync``, ``num_classes``, ...) are the wrapped module's."""

    def __init__(self, module: nn.Module, compiled: Any) -> None:
        super().__init__()
        self.module = module
        object.__setattr__(self, "compiled", compiled)  # not a submodule: it wraps the same module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is None:
            return self.module(*args, **kwargs)
        try:
            return self.compiled(*args, **kwargs)
        except _compile_errors() as error:
            message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
            warnings.warn(f"torch.compile failed ({type(error).__name__}: {message}); running the model "
                          "uncompiled", RuntimeWarning, stacklevel=2)
            object.__setattr__(self, "compiled", None)
            return self.module(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["module"], name)


def compile_module(module: nn.Module, *, inference: bool, device: torch.device) -> nn.Module:
    """``torch.compile`` (inductor) with a fallback: the eager module, with a warning, where it cannot compile.

    For inference the weights are frozen into the compiled graph (inductor's ``freezing``: constant folding and
    oneDNN weight prepacking), so the module must not change while the result is used. On the CPU inductor
    needs a C++ compiler; without one (or if compiling fails for any other reason) the module runs uncompiled
    and a ``RuntimeWarning`` says why.

    Args:
        module: The module to compile.
        inference: Compile for inference (with freezing) rather than training.
        device: Where it runs.

    Returns:
        A module with ``module``'s call signature (and attributes) that runs the compiled code.

    Example:
        >>> import torch
        >>> run = compile_module(torch.nn.Linear(2, 2), inference=True,
        ...                      device=torch.device("cpu"))  # doctest: +SKIP
        >>> run(torch.ones(1, 2)).shape  # doctest: +SKIP
        torch.Size([1, 2])
    """
    if device.type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        except Exception as error:  # noqa: BLE001 - no compiler found, or the probe itself is missing
            warnings.warn(f"torch.compile needs a C++ compiler on the CPU and none was found ({error}); running the "
                          "model uncompiled (install g++ or clang, or set CXX)", RuntimeWarning, stacklevel=2)
            return _CompiledOrEager(module, None)  # type: ignore[arg-type]
    options = {"freezing": True} if inference else None
    return _CompiledOrEager(module, torch.compile(module, options=options))
