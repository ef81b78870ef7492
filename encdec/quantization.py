"""int8 models that keep the labels: ``quantize`` calibrates a model with OpenVINO's NNCF and checks the result.

``quantize(model, calibration)`` exports the model to ONNX (``encdec.export_onnx``), reads it into OpenVINO and
quantizes it with ``nncf.quantize`` (int8 weights and activations) on most of the calibration images, prepared
exactly as ``encdec.predict`` prepares images for the model (the recorded training size, normalisation, padding).
The images it held out are then predicted by the fp32 and the int8 model through ``predict``: when fewer labels
agree than ``min_agreement`` (99% by default), NNCF's accuracy control (``nncf.quantize_with_accuracy_control``)
quantizes again, keeping the layers whose int8 version changes the labels most in fp32 until the agreement is
reached, and if even that misses it ``quantize`` raises ``QuantizationError`` (or warns, when asked to).

The result is a ``QuantizedPredictor``: an ``encdec.OnnxPredictor`` running an OpenVINO IR file that carries the
same ``encdec`` metadata as an exported ONNX file (architecture, classes, class names, size rule, normalisation,
training preprocessing), so ``encdec.predict(quantized, images)`` and ``encdec predict --weights FOLDER`` use it as
they use the model. ``save`` writes it to a folder (``model.xml`` + ``model.bin``); ``QuantizedPredictor(folder)``
loads it back.

Needs the ``openvino`` extra (``pip install 'encdec[openvino]'``: OpenVINO, NNCF and onnx).

Example:
    >>> import tempfile
    >>> is_quantized(tempfile.mkdtemp())  # a folder without model.xml
    False
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ._files import IMAGE_SUFFIXES
from .atomic import atomic_write
from .deployment import OnnxPredictor
from .export import METADATA_KEY
from .inference import predict
from .input_spec import input_spec_of
from .preprocessing import recorded_size
from .pretrained import from_pretrained

__all__ = ["MODEL_FILE", "QuantizationError", "QuantizationReport", "QuantizedPredictor",
           "is_quantized", "quantize"]

PathLike = Union[str, "os.PathLike[str]"]

#: The IR file of a saved quantized model inside its folder (its weights are ``model.bin`` beside it).
MODEL_FILE = "model.xml"
_EXTRA = "pip install 'encdec[openvino]'"


class QuantizationError(RuntimeError):
    """The int8 model's labels agree with fp32 on fewer held-out labels than asked for (after the fp32 fallback).

    Attributes:
        report: The ``QuantizationReport`` of the attempt that came closest.

    Example:
        >>> report = QuantizationReport(0.95, 4096, 6, 2, 0.99, "accuracy_control", 3)
        >>> QuantizationError("below", report).report.agreement
        0.95
    """

    def __init__(self, message: str, report: QuantizationReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class QuantizationReport:
    """How an int8 model compares with its fp32 model, stored with it.

    Attributes:
        agreement: Share of the held-out labels (pixels for segmentation, images for classifiers) equal to fp32's.
        compared: Labels compared.
        calibration_images: Images NNCF calibrated on.
        held_out_images: Images the agreement was measured on (never calibrated on).
        min_agreement: The agreement asked for.
        method: ``"nncf"`` (every quantizable layer in int8) or ``"accuracy_control"`` (some kept in fp32).
        fp32_layers: Convolutions (and matrix products) left in fp32: what accuracy control kept, and any NNCF
            leaves unquantized on its own.

    Example:
        >>> QuantizationReport(0.998, 4096, 6, 2, 0.99, "nncf", 0).summary()
        'int8 labels equal fp32 on 99.80% of 4,096 held-out labels (2 images; calibrated on 6), method nncf'
    """

    agreement: float
    compared: int
    calibration_images: int
    held_out_images: int
    min_agreement: float
    method: str
    fp32_layers: int

    def summary(self) -> str:
        """One line: agreement, what it was measured on, how the model was quantized."""
        kept = f", {self.fp32_layers} layers kept in fp32" if self.fp32_layers else ""
        return (f"int8 labels equal fp32 on {self.agreement:.2%} of {self.compared:,} held-out labels "
                f"({self.held_out_images} images; calibrated on {self.calibration_images}), method {self.method}{kept}")


class QuantizedPredictor(OnnxPredictor):
    """An int8 OpenVINO model with encdec's metadata, usable wherever ``encdec.predict`` takes a model.

    Args:
        path: A folder written by ``save`` (or ``encdec quantize``), or its ``model.xml``.
        threads: CPU threads OpenVINO may use; default: ``torch.get_num_threads()``.

    Attributes:
        report: The ``QuantizationReport`` stored with the model (``None`` for an IR file without one).

    Raises:
        FileNotFoundError: ``path`` holds no ``model.xml``.
        ImportError: OpenVINO is not installed; the message names the extra.

    Example:
        >>> import tempfile, torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
        >>> folder = encdec.quantize(model, torch.randn(8, 3, 32, 32), min_agreement=0.0).save(tempfile.mkdtemp())
        >>> loaded = encdec.QuantizedPredictor(folder)
        >>> loaded.num_classes, loaded.report.method
        (3, 'nncf')
    """

    def __init__(self, path: PathLike, *, threads: Optional[int] = None) -> None:
        path = Path(path)
        if path.is_dir():
            if not (path / MODEL_FILE).is_file():
                raise FileNotFoundError(f"QuantizedPredictor: {str(path)!r} holds no {MODEL_FILE} (a folder written "
                                        "by encdec.quantize(...).save or encdec quantize)")
            path = path / MODEL_FILE
        super().__init__(path, backend="openvino", threads=threads)
        record = self.metadata.get("quantization")
        self.report = QuantizationReport(**record) if isinstance(record, dict) else None

    def save(self, folder: PathLike) -> Path:
        """Write the model to ``folder`` (created) as ``model.xml`` + ``model.bin``; returns the folder.

        Each file is written atomically, the weights first, so a folder whose ``model.xml`` is there is complete.

        Example:
            >>> import tempfile, torch, encdec
            >>> model = encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64))
            >>> folder = encdec.quantize(model, torch.randn(6, 3, 32, 32), min_agreement=0.0).save(
            ...     tempfile.mkdtemp() + "/unet-int8")
            >>> sorted(p.name for p in folder.iterdir())
            ['model.bin', 'model.xml']
        """
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"QuantizedPredictor.save: {str(folder)!r} is a file; pass a folder")
        folder.mkdir(parents=True, exist_ok=True)
        source = self.path.with_suffix(".bin")
        atomic_write(folder / "model.bin", lambda tmp: shutil.copyfile(source, tmp))
        atomic_write(folder / MODEL_FILE, lambda tmp: shutil.copyfile(self.path, tmp))
        return folder


def is_quantized(path: PathLike) -> bool:
    """Whether ``path`` is a folder holding a saved quantized model (``model.xml``).

    Example:
        >>> import tempfile
        >>> is_quantized(tempfile.mkdtemp())
        False
    """
    return Path(path).is_dir() and (Path(path) / MODEL_FILE).is_file()


def quantize(
    model: Union[nn.Module, PathLike],
    calibration: Any,
    *,
    min_agreement: float = 0.99,
    on_low_agreement: str = "raise",
    held_out: float = 0.25,
    max_images: int = 300,
    fallback: bool = True,
    size: Union[str, int, None] = "auto",
    batch_size: int = 8,
    threads: Optional[int] = None,
    log: Optional[Callable[[str], None]] = None,
) -> QuantizedPredictor:
    """An int8 version of ``model`` (OpenVINO + NNCF) whose labels agree with fp32 on held-out images.

    The calibration images are prepared as ``encdec.predict`` prepares images for ``model``: resized to the
    training size recorded with it (``size="auto"``), normalised with its mean/std and padded to its size rule;
    float tensors are taken as already normalised, as ``predict`` takes them. The last ``held_out`` share of them
    (at least one image) is not calibrated on: the agreement is measured there, as the share of ``predict``'s
    labels (pixels for segmentation models) equal to those of the fp32 model run in OpenVINO.

    Quantize in a process of its own (``encdec quantize`` on the command line does): a Python process that has run
    NNCF crashes (segmentation fault) when it later starts ``DataLoader`` workers, as ``fit(...)`` with
    ``num_workers > 0`` does.

    Args:
        model: An encdec model, or a ``save_pretrained`` folder / ``.safetensors`` file (an ``encdec train`` run
            folder) loaded with ``encdec.from_pretrained``.
        calibration: Images like the ones the model will see: a folder of image files, a ``DataLoader`` (of
            batches, or ``(images, targets)`` pairs), a dataset (of images or ``(image, target)`` pairs), a list
            of images of any kind ``predict`` takes, or a batch tensor ``(N, C, H, W)``.
        min_agreement: Share of held-out labels that must equal fp32's, in ``[0, 1]``.
        on_low_agreement: ``"raise"`` (``QuantizationError``) or ``"warn"`` (return the model with a warning)
            when the agreement stays below ``min_agreement``.
        held_out: Share of the calibration images kept for measuring the agreement, in ``(0, 1)``.
        max_images: Calibration images read at most (NNCF's default subset is 300).
        fallback: When the agreement is too low, quantize again with NNCF's accuracy control, which keeps the
            layers that change the labels most in fp32 until the agreement is reached (slower: it ranks layers
            by quantizing them one at a time).
        size: As ``predict``'s ``size``: ``"auto"`` (the recorded training size), an int, or ``None``.
        batch_size: Images per batch when measuring the agreement.
        threads: CPU threads OpenVINO may use; default: ``torch.get_num_threads()``.
        log: Where progress lines go (default: nowhere).

    Returns:
        A ``QuantizedPredictor`` (its ``report`` says how well it agrees); ``save`` it to keep it.

    Raises:
        ImportError: OpenVINO or NNCF is not installed; the message names the extra to install.
        ValueError: An argument is out of range, or the calibration holds fewer than two images.
        FileNotFoundError: ``calibration`` names a folder that does not exist.
        QuantizationError: The agreement stayed below ``min_agreement`` and ``on_low_agreement="raise"``.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
        >>> quantized = encdec.quantize(model, torch.randn(8, 3, 32, 32), min_agreement=0.0)
        >>> quantized.report.held_out_images, quantized.report.calibration_images
        (2, 6)
    """
    nncf, openvino = _require()
    _check_arguments(min_agreement, on_low_agreement, held_out, max_images)
    say = log or (lambda line: None)
    if not isinstance(model, nn.Module):
        model = from_pretrained(model)
    items = _calibration_items(calibration, max_images)
    if len(items) < 2:
        raise ValueError(f"quantize: calibration holds {len(items)} image(s); it needs at least 2 (some to "
                         "calibrate on, some held out to measure the agreement)")
    held = max(1, int(math.ceil(len(items) * held_out)))
    calibrate, check = items[: len(items) - held], items[len(items) - held :]
    workdir = tempfile.TemporaryDirectory(prefix="encdec-int8-")
    folder = Path(workdir.name)
    options = {"size": size, "batch_size": batch_size}
    fp32 = OnnxPredictor.from_model(model, folder / "model.onnx", backend="openvino", threads=threads,
                                    input_size=_export_size(model))
    inputs, _ = _recorded(fp32, calibrate, {**options, "batch_size": 1})
    check_inputs, expected = _recorded(fp32, check, options)
    say(f"calibrating on {len(calibrate)} images, measuring on {len(check)} held out")
    source = openvino.Core().read_model(str(fp32.path))
    metadata = dict(fp32.metadata)
    with _quiet(nncf):
        quantized = nncf.quantize(source, nncf.Dataset(inputs), subset_size=len(inputs))
    report, predictor = _measure(quantized, "nncf", folder, metadata, check, expected, options, threads,
                                 (len(calibrate), min_agreement))
    say(report.summary())
    if report.agreement < min_agreement and fallback:
        say(f"below {min_agreement:.2%}: quantizing again with NNCF's accuracy control (layers kept in fp32)")
        references = [(x, fp32._run(x).argmax(1)) for x in check_inputs]
        with _quiet(nncf):
            controlled = nncf.quantize_with_accuracy_control(
                source, nncf.Dataset(inputs), nncf.Dataset(references), _agreement_metric,
                max_drop=1.0 - min_agreement, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(inputs))
        second, second_predictor = _measure(controlled, "accuracy_control", folder, metadata, check, expected,
                                            options, threads, (len(calibrate), min_agreement))
        say(second.summary())
        if second.agreement >= report.agreement:
            report, predictor = second, second_predictor
    predictor._keep = workdir
    if report.agreement < min_agreement:
        message = (f"{report.summary()}: below min_agreement={min_agreement:.2%}"
                   f"{'' if fallback else ' (fallback=False)'}. A model with near-tied class scores (weakly trained) "
                   "changes labels under int8; train it further, calibrate on images like the ones it will see, or "
                   "accept it with a lower min_agreement or on_low_agreement='warn'")
        if on_low_agreement == "raise":
            workdir.cleanup()
            raise QuantizationError(message, report)
        warnings.warn(message, stacklevel=2)
    return predictor


# ----------------------------------------------------------------------------------------------- helpers


def _require() -> Tuple[Any, Any]:
    try:
        import openvino
    except ImportError as error:
        raise ImportError(f"encdec.quantize needs OpenVINO and NNCF: {_EXTRA} ({error})") from None
    try:
        import nncf
    except ImportError as error:
        raise ImportError(f"encdec.quantize needs NNCF (OpenVINO's quantization tools): {_EXTRA} ({error})"
                          ) from None
    return nncf, openvino


def _check_arguments(min_agreement: float, on_low: str, held_out: float, max_images: int) -> None:
    if isinstance(min_agreement, bool) or not isinstance(min_agreement, (int, float)) or not 0 <= min_agreement <= 1:
        raise ValueError(f"min_agreement must be a share of labels in [0, 1], got {min_agreement!r}")
    if on_low not in ("raise", "warn"):
        raise ValueError(f"on_low_agreement must be 'raise' or 'warn', got {on_low!r}")
    if isinstance(held_out, bool) or not isinstance(held_out, (int, float)) or not 0 < held_out < 1:
        raise ValueError(f"held_out must be a share of the calibration images in (0, 1), got {held_out!r}")
    if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 2:
        raise ValueError(f"max_images must be an integer of at least 2, got {max_images!r}")


def _export_size(model: nn.Module) -> Optional[int]:
    """The side to export at: the recorded training size, else a small valid one (any size runs: it is dynamic)."""
    spec = input_spec_of(model)
    if spec is None or spec.fixed is not None:
        return None
    return recorded_size(model) or spec.valid_size(64)


def _first(sample: Any) -> Any:
    """The image of a sample: the first entry of an ``(image, target)`` pair, the ``image`` entry of a dict."""
    if isinstance(sample, (tuple, list)):
        return sample[0]
    if isinstance(sample, dict):
        for key in ("image", "images"):
            if key in sample:
                return sample[key]
        raise ValueError(f"quantize: a calibration sample is a dict without an 'image' entry (keys: {list(sample)})")
    return sample


def _calibration_items(calibration: Any, limit: int) -> List[Any]:
    """Up to ``limit`` images, each as ``predict`` takes one."""
    if isinstance(calibration, (str, os.PathLike)):
        folder = Path(calibration)
        if not folder.is_dir():
            raise FileNotFoundError(f"quantize: calibration folder {str(folder)!r} does not exist")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                       and not p.name.startswith("."))
        if not files:
            raise ValueError(f"quantize: calibration folder {str(folder)!r} holds no images "
                             f"({', '.join(IMAGE_SUFFIXES)})")
        return files[:limit]
    if isinstance(calibration, torch.Tensor):
        return list(calibration[:limit].unbind(0)) if calibration.dim() == 4 else [calibration]
    items: List[Any] = []
    if isinstance(calibration, torch.utils.data.DataLoader) or not hasattr(calibration, "__getitem__"):
        for batch in calibration:
            images = _first(batch)
            items.extend(images.unbind(0) if isinstance(images, torch.Tensor) and images.dim() == 4 else [images])
            if len(items) >= limit:
                break
        return items[:limit]
    return [_first(calibration[i]) for i in range(min(len(calibration), limit))]


def _groups(items: List[Any]) -> Iterable[Any]:
    """The images as ``predict`` calls take them: float tensors (normalised inputs) stacked by shape, since
    ``predict`` reads a float batch as model inputs; every other kind in lists."""
    group: List[Any] = []
    for item in items:
        floats = isinstance(item, torch.Tensor) and item.is_floating_point()
        if group and (floats != _is_float(group[0]) or (floats and item.shape != group[0].shape)):
            yield torch.stack(group) if _is_float(group[0]) else group
            group = []
        group.append(item)
    if group:
        yield torch.stack(group) if _is_float(group[0]) else group


def _is_float(item: Any) -> bool:
    return isinstance(item, torch.Tensor) and item.is_floating_point()


def _labels(predictor: OnnxPredictor, items: List[Any], options: dict) -> List[torch.Tensor]:
    labels: List[torch.Tensor] = []
    for group in _groups(items):
        out = predict(predictor, group, **options)
        labels.extend(out.unbind(0) if isinstance(out, torch.Tensor) else out)
    return labels


def _recorded(predictor: OnnxPredictor, items: List[Any], options: dict) -> Tuple[List[np.ndarray], List[Any]]:
    """The arrays ``predict`` hands the runtime for ``items`` (prepared, padded), and the labels it returns."""
    inputs: List[np.ndarray] = []
    run = predictor._run

    def recording(x: np.ndarray) -> Any:
        inputs.append(x.copy())
        return run(x)

    predictor._run = recording
    try:
        labels = _labels(predictor, items, options)
    finally:
        predictor._run = run
    return inputs, labels


def _measure(quantized: Any, method: str, folder: Path, metadata: dict, check: List[Any],
             expected: List[torch.Tensor], options: dict, threads: Optional[int],
             counts: Tuple[int, float]) -> Tuple[QuantizationReport, QuantizedPredictor]:
    """Save ``quantized`` with the metadata, load it as a predictor and measure its agreement on ``check``."""
    import openvino

    target = folder / method
    target.mkdir(exist_ok=True)
    path = target / MODEL_FILE
    quantized.set_rt_info(json.dumps(metadata), METADATA_KEY)
    openvino.save_model(quantized, str(path), compress_to_fp16=False)
    got = _labels(OnnxPredictor(path, backend="openvino", threads=threads), check, options)
    equal = sum(int((a == b).sum()) for a, b in zip(got, expected))
    compared = sum(b.numel() for b in expected)
    report = QuantizationReport(equal / compared, compared, counts[0], len(check), counts[1], method,
                                _fp32_layers(quantized))
    quantized.set_rt_info(json.dumps({**metadata, "quantization": dataclasses.asdict(report)}), METADATA_KEY)
    openvino.save_model(quantized, str(path), compress_to_fp16=False)
    return report, QuantizedPredictor(path, threads=threads)


def _agreement_metric(compiled: Any, data: Iterable[Tuple[np.ndarray, np.ndarray]]) -> float:
    """Accuracy control's metric: the share of labels equal to the fp32 model's on the held-out inputs."""
    equal = total = 0
    output = compiled.output(0)
    for x, reference in data:
        labels = np.asarray(compiled(x)[output]).argmax(1)
        equal += int((labels == reference).sum())
        total += reference.size
    return equal / max(total, 1)


def _fp32_layers(quantized: Any) -> int:
    """Convolutions and matrix products of ``quantized`` whose weights are a plain fp32 constant (an int8 one is
    read through ``Convert`` and scaled by ``Multiply``)."""
    weighted = {"Convolution", "GroupConvolution", "ConvolutionBackpropData", "MatMul"}
    return sum(1 for op in quantized.get_ordered_ops() if op.get_type_name() in weighted
               and op.input_value(1).get_node().get_type_name() == "Constant")


@contextlib.contextmanager
def _quiet(nncf: Any) -> Iterator[None]:
    """NNCF's progress bars (printed to standard output), info lines and warnings silenced (its log level restored
    afterwards)."""
    level = logging.getLogger("nncf").level
    nncf.set_log_level(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        nncf.set_log_level(level or logging.INFO)
