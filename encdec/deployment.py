"""Deployment runtimes as peers of PyTorch: an exported ONNX file run in ONNX Runtime or OpenVINO through
``encdec.predict``, with exactly its padding, normalisation, cropping and outputs.

``OnnxPredictor`` is a module without parameters whose forward runs the file in the chosen runtime; it
carries the model's size rule, mean/std and class count from the file's ``encdec`` metadata (written by
``encdec.export_onnx``), so ``encdec.predict(predictor, images)`` prepares the images as it would for the
PyTorch model and crops the labels back the same way.

Example:
    >>> import tempfile, torch, encdec
    >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
    >>> predictor = encdec.OnnxPredictor.from_model(model, input_size=64)
    >>> predictor.predict(torch.randn(1, 3, 30, 45)).shape
    torch.Size([1, 30, 45])
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from .export import METADATA_KEY, export_onnx
from .inference import predict
from .input_spec import InputSpec

__all__ = ["BACKENDS", "OnnxPredictor"]

#: The runtimes an ``OnnxPredictor`` can run a file in, and the extra that installs each.
BACKENDS = {"onnxruntime": "onnx", "openvino": "openvino"}

PathLike = Union[str, "os.PathLike[str]"]


def _read_metadata(path: Path) -> dict:
    if path.suffix == ".xml":  # an OpenVINO IR (encdec.quantize writes one): the metadata is in its rt_info
        return _read_ir_metadata(path)
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:  # noqa: BLE001 - onnx raises several types for a file that is not ONNX
        raise ValueError(f"{str(path)!r} is not a readable ONNX file: {type(error).__name__}: {error}") from error
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            try:
                return json.loads(entry.value)
            except json.JSONDecodeError as error:
                raise ValueError(f"{str(path)!r}: its {METADATA_KEY!r} metadata is not valid JSON ({error})") from error
    return {}


def _read_ir_metadata(path: Path) -> dict:
    openvino = _import_openvino()
    try:
        model = openvino.Core().read_model(str(path))
    except Exception as error:  # noqa: BLE001 - OpenVINO raises its own types for a file that is not IR
        raise ValueError(f"{str(path)!r} is not a readable OpenVINO IR file: {type(error).__name__}: {error}"
                         ) from error
    if not model.has_rt_info(METADATA_KEY):
        return {}
    text = model.get_rt_info(METADATA_KEY).astype(str)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r}: its {METADATA_KEY!r} rt_info is not valid JSON ({error})") from error


def _import_openvino() -> Any:
    try:
        import openvino
    except ImportError as error:
        raise ImportError("backend='openvino' needs OpenVINO: pip install 'encdec[openvino]'") from error
    return openvino


#: What an ``OnnxPredictor`` takes from the file's metadata into its ``encdec_config`` (what ``predict`` and the
#: command line read from a model's config).
CONFIG_FROM_METADATA = ("architecture", "mean", "std", "class_names", "preprocessing", "activation")


class OnnxPredictor(nn.Module):
    """An ONNX file run in ONNX Runtime or OpenVINO, usable wherever ``encdec.predict`` takes a model.

    Args:
        path: An ``.onnx`` file, ideally written by ``encdec.export_onnx`` (its metadata gives the size rule,
            normalisation and classes; a file without it is run as it is, normalised with ImageNet's mean/std
            and without padding, with a warning); or an OpenVINO IR ``.xml`` file (``backend="openvino"``), as
            ``encdec.quantize`` writes with the same metadata in its ``rt_info``.
        backend: ``"onnxruntime"`` (the ``onnx`` extra) or ``"openvino"`` (the ``openvino`` extra).
        threads: CPU threads the runtime may use; default: ``torch.get_num_threads()``.

    Attributes:
        metadata: The file's whole ``encdec`` metadata (``{}`` without it).
        input_spec: The size rule from the metadata (``None`` without it).
        num_classes: Output classes from the metadata.
        encdec_config: ``architecture``, ``mean``, ``std`` and, where recorded, ``class_names``,
            ``preprocessing`` and ``activation`` from the metadata.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``backend`` is not one of ``BACKENDS``, the file is not ONNX (or IR), or an IR file is given
            with ``backend="onnxruntime"``.
        ImportError: The runtime is not installed; the message names the extra.

    Example:
        >>> import tempfile, torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> path = encdec.export_onnx(model, tempfile.mkdtemp() + "/unet.onnx", 64)
        >>> predictor = encdec.OnnxPredictor(path)
        >>> predictor.input_spec.multiple, predictor.num_classes
        (16, 3)
    """

    encdec_external = True  # predict runs it as it is: no folding, layout switching or compiling

    def __init__(self, path: PathLike, *, backend: str = "onnxruntime", threads: Optional[int] = None) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not supported; use one of {', '.join(BACKENDS)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"OnnxPredictor: ONNX file {str(self.path)!r} does not exist")
        if self.path.suffix == ".xml" and backend != "openvino":
            raise ValueError(f"OnnxPredictor: {str(self.path)!r} is an OpenVINO IR file; it runs with "
                             f"backend='openvino', not {backend!r}")
        self.backend = backend
        self.threads = int(threads) if threads is not None else torch.get_num_threads()
        metadata = _read_metadata(self.path)
        if not metadata:
            warnings.warn(f"{str(self.path)!r} has no encdec metadata (it was not written by encdec.export_onnx): "
                          "images are normalised with ImageNet's mean/std and not padded", stacklevel=2)
        self.metadata = metadata
        spec = metadata.get("input_spec")
        self.input_spec = InputSpec(**spec) if spec else None
        self.num_classes = metadata.get("num_classes")
        self.encdec_config = {key: metadata[key] for key in CONFIG_FROM_METADATA if metadata.get(key) is not None}
        self._run = self._onnxruntime() if backend == "onnxruntime" else self._openvino()
        self._keep: Any = None  # a temporary folder that must live as long as the predictor

    def _onnxruntime(self) -> Any:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("backend='onnxruntime' needs onnxruntime: pip install 'encdec[onnx]'") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]

    def _openvino(self) -> Any:
        openvino = _import_openvino()
        # f32 explicitly: on CPUs with bfloat16 OpenVINO would otherwise lower the precision on its own
        compiled = openvino.Core().compile_model(str(self.path), "CPU", {
            "INFERENCE_NUM_THREADS": self.threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        output = compiled.output(0)
        return lambda x: compiled(x)[output]

    @classmethod
    def from_model(cls, model: nn.Module, path: Optional[PathLike] = None, *, backend: str = "onnxruntime",
                   input_size: Any = None, threads: Optional[int] = None) -> OnnxPredictor:
        """Export ``model`` (``encdec.export_onnx``, checked against PyTorch) and load it in ``backend``.

        Args:
            model: The PyTorch model.
            path: Where to keep the file; default: a temporary folder removed with the predictor.
            backend: ``"onnxruntime"`` or ``"openvino"``.
            input_size: Example size for the export (default: the model's reference size).
            threads: CPU threads for the runtime.

        Example:
            >>> import encdec
            >>> predictor = encdec.OnnxPredictor.from_model(encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)),
            ...                                             input_size=32)
            >>> predictor.backend
            'onnxruntime'
        """
        keep = None
        if path is None:
            keep = tempfile.TemporaryDirectory(prefix="encdec-onnx-")
            path = Path(keep.name) / "model.onnx"
        export_onnx(model, path, input_size)
        predictor = cls(path, backend=backend, threads=threads)
        predictor._keep = keep
        return predictor

    def forward(self, x: Tensor) -> Tensor:
        """Logits for a batch ``(N, C, H, W)`` of prepared images, computed by the runtime (float32, CPU)."""
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(np.asarray(self._run(array)).copy())

    def predict(self, images: Any, **kwargs: Any) -> Any:
        """``encdec.predict`` with this predictor as the model.

        Example:
            >>> import torch, encdec
            >>> predictor = encdec.OnnxPredictor.from_model(encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)),
            ...                                             input_size=32)
            >>> predictor.predict(torch.randn(3, 20, 20)).shape
            torch.Size([20, 20])
        """
        return predict(self, images, **kwargs)

    def extra_repr(self) -> str:
        return f"{str(self.path)!r}, backend={self.backend!r}"
