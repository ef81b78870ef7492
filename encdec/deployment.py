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

import dataclasses
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from ._files import read_regular_file
from .export import METADATA_FORMAT, METADATA_KEY, export_onnx
from .inference import predict
from .input_spec import InputSpec
from .preprocessing import check_recorded_values
from .pretrained import MAX_RECORDED_SIZE
from .weights.errors import shorten

__all__ = ["BACKENDS", "OnnxPredictor", "OnnxModelError", "check_onnx_metadata", "check_onnx_graph"]

#: The runtimes an ``OnnxPredictor`` can run a file in, and the extra that installs each.
BACKENDS = {"onnxruntime": "onnx", "openvino": "openvino"}

PathLike = Union[str, "os.PathLike[str]"]


#: Largest ONNX file an ``OnnxPredictor`` reads (protobuf's own limit on one message).
MAX_ONNX_BYTES = 2 * 1024**3
#: Nodes that run their body as often as the file or its inputs say (a ``Loop`` of 10**12 iterations never
#: ends): an ``OnnxPredictor`` refuses a graph holding one, anywhere, before it runs. ``encdec.export_onnx`` writes
#: none.
LOOP_OPS = ("Loop", "Scan")
#: Largest side, size multiple or minimum an ONNX file's size rule may record (predict pads images to it).
MAX_SPEC_SIDE = MAX_RECORDED_SIZE
_SPEC_FIELDS = tuple(field.name for field in dataclasses.fields(InputSpec))


class OnnxModelError(ValueError):
    """An ONNX file an ``OnnxPredictor`` will not run: not ONNX, ``encdec`` metadata of the wrong type or range, or
    a graph with loops; the message names the file and the field or node at fault.

    Example:
        >>> issubclass(OnnxModelError, ValueError)
        True
    """


def _read_model(path: Path) -> Tuple[Any, bytes]:
    """The parsed model and the bytes it was parsed from, read through one non-blocking open: what is checked
    is what the runtime is given."""
    import onnx

    data = read_regular_file(path, "ONNX file", limit=MAX_ONNX_BYTES)
    try:
        return onnx.load_from_string(data), data
    except Exception as error:  # noqa: BLE001 - onnx and protobuf raise several types for a file that is not ONNX
        raise OnnxModelError(f"{str(path)!r} is not a readable ONNX file: {type(error).__name__}: "
                             f"{shorten(str(error))}") from None


def _metadata_of(proto: Any, source: str) -> Any:
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            try:
                return json.loads(entry.value)
            except RecursionError:
                raise OnnxModelError(f"{source}: its {METADATA_KEY!r} metadata is JSON nested too deeply") from None
            except ValueError as error:
                raise OnnxModelError(f"{source}: its {METADATA_KEY!r} metadata is not valid JSON "
                                     f"({shorten(str(error))})") from None
    return {}


def _is_count(value: Any, largest: Optional[int] = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1 and (
        largest is None or value <= largest)


def check_onnx_metadata(metadata: Any, source: str, outputs: Optional[int] = None,
                        inputs: Optional[int] = None) -> Dict[str, Any]:
    """An ONNX file's ``encdec`` metadata (written by ``encdec.export_onnx``) checked field by field, as a saved
    ``config.json`` is: ``format`` this encdec's; ``architecture`` a name; ``num_classes`` a positive whole number
    equal to the graph's ``outputs`` (its output channels, when the graph states them); ``input_spec`` an object
    whose ``channels`` (the graph's ``inputs`` channels, when it states them), ``multiple``, ``min_size``,
    ``reference`` and ``fixed`` (or null) are whole numbers from 1 to ``MAX_SPEC_SIDE``; ``mean`` and ``std``
    lists of 1 to 4 finite numbers, ``std`` positive; ``class_names`` a list of strings, one per output.

    Raises:
        OnnxModelError: Naming the file, the field, what it holds and what would be valid.

    Example:
        >>> check_onnx_metadata({"num_classes": 3, "std": [0.5, 0.5, 0.5]}, "m.onnx")["num_classes"]
        3
        >>> try:
        ...     check_onnx_metadata({"input_spec": {"multiple": -16}}, "m.onnx")
        ... except OnnxModelError as error:
        ...     print(error)
        m.onnx: encdec metadata 'input_spec.multiple' must be a whole number from 1 to 16384, got -16
    """
    def bad(key: str, what: str, value: Any) -> OnnxModelError:
        return OnnxModelError(f"{source}: encdec metadata {key!r} must be {what}, got {shorten(repr(value))}")

    if not isinstance(metadata, dict):
        raise OnnxModelError(f"{source}: encdec metadata is a {type(metadata).__name__}, not an object of fields "
                             "(as encdec.export_onnx writes it)")
    version = metadata.get("format", METADATA_FORMAT)
    if isinstance(version, bool) or version != METADATA_FORMAT:
        raise bad("format", f"{METADATA_FORMAT} (files this encdec version writes)", metadata["format"])
    if not isinstance(metadata.get("architecture", ""), str):
        raise bad("architecture", "a model name", metadata["architecture"])
    classes = metadata.get("num_classes")
    if classes is not None and not _is_count(classes):
        raise bad("num_classes", "a positive whole number", classes)
    if classes is not None and outputs is not None and classes != outputs:
        raise bad("num_classes", f"the graph's {outputs} output channels", classes)
    spec = metadata.get("input_spec")
    if spec is not None:
        if not isinstance(spec, dict) or not set(spec) <= set(_SPEC_FIELDS):
            raise bad("input_spec", f"an object of {', '.join(_SPEC_FIELDS)}", spec)
        for key, value in spec.items():
            if not (key == "fixed" and value is None) and not _is_count(value, MAX_SPEC_SIDE):
                raise bad(f"input_spec.{key}", f"a whole number from 1 to {MAX_SPEC_SIDE}"
                          + (" or null" if key == "fixed" else ""), value)
        if inputs is not None and spec.get("channels", inputs) != inputs:
            raise bad("input_spec.channels", f"the graph's {inputs} input channels", spec["channels"])
    check_recorded_values(metadata, bad)
    names = metadata.get("class_names")
    expected = classes if classes is not None else outputs
    if names is not None and expected is not None and len(names) != expected:
        raise bad("class_names", f"{expected} names, one per output", names)
    return metadata


def _subgraphs(node: Any) -> List[Any]:
    import onnx

    graphs = []
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            graphs.append(attribute.g)
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            graphs.extend(attribute.graphs)
    return graphs


def check_onnx_graph(proto: Any, source: str) -> None:
    """Refuse a graph that is not one input (the images) to one or more outputs (the logits first), or that holds a
    node repeating its body as often as the file or its inputs say (``LOOP_OPS``), in the main graph, any subgraph
    (the branches of an ``If``) or a local function, before anything runs: a ``Loop`` of 10**12 iterations would
    never end. Tensors stored in other files (ONNX external data, which may name any path) are refused too.

    Raises:
        OnnxModelError: Naming the file and the node and its type (or the tensor stored elsewhere).

    Example:
        >>> import onnx
        >>> from onnx import helper, TensorProto
        >>> body = helper.make_graph([], "body", [], [])
        >>> loop = helper.make_node("Loop", ["n", ""], [], name="forever", body=body)
        >>> n = helper.make_tensor_value_info("n", TensorProto.INT64, [])
        >>> graph = helper.make_graph([loop, helper.make_node("Identity", ["n"], ["y"])], "g", [n],
        ...                           [helper.make_tensor_value_info("y", TensorProto.INT64, [])])
        >>> try:
        ...     check_onnx_graph(helper.make_model(graph), "m.onnx")
        ... except OnnxModelError as error:
        ...     print(str(error).split(",")[0])
        m.onnx: node 'forever' is a Loop
    """
    import onnx

    inputs = _graph_inputs(proto)
    if len(inputs) != 1 or not proto.graph.output:
        raise OnnxModelError(f"{source}: the graph has {len(inputs)} inputs and {len(proto.graph.output)} outputs; "
                             "OnnxPredictor runs graphs of one input (the images) and one output (the logits), as "
                             "encdec.export_onnx writes them")
    pending = [proto.graph] + [function for function in proto.functions]
    while pending:
        graph = pending.pop()
        for tensor in getattr(graph, "initializer", ()):
            if tensor.data_location == onnx.TensorProto.EXTERNAL:
                raise OnnxModelError(
                    f"{source}: tensor {shorten(repr(tensor.name))} is stored in another file (ONNX external data), "
                    "which OnnxPredictor does not follow; save the model as one file")
        for index, node in enumerate(graph.node):
            if node.op_type in LOOP_OPS:
                name = shorten(repr(node.name)) if node.name else f"#{index} (unnamed)"
                raise OnnxModelError(
                    f"{source}: node {name} is a {node.op_type}, which repeats its body as often as the file or its "
                    "inputs say (it might never end); OnnxPredictor runs graphs without loops, as "
                    "encdec.export_onnx writes them")
            pending.extend(_subgraphs(node))


def _graph_inputs(proto: Any) -> List[Any]:
    """The graph's inputs that are fed at run time (not its weights, which older files also list as inputs)."""
    initialized = {tensor.name for tensor in proto.graph.initializer}
    return [value for value in proto.graph.input if value.name not in initialized]


def _channels(values: Any) -> Optional[int]:
    """Dimension 1 (the channels) of a graph's first input or output, when the file states it as a number."""
    dims = values[0].type.tensor_type.shape.dim if values else []
    return int(dims[1].dim_value) if len(dims) > 1 and dims[1].HasField("dim_value") else None


def _read_ir_metadata(path: Path) -> dict:
    """The ``encdec`` metadata an OpenVINO IR file (as ``encdec.quantize`` writes it) holds in its ``rt_info``."""
    openvino = _import_openvino()
    try:
        model = openvino.Core().read_model(str(path))
    except Exception as error:  # noqa: BLE001 - OpenVINO raises its own types for a file that is not IR
        raise OnnxModelError(f"{str(path)!r} is not a readable OpenVINO IR file: {type(error).__name__}: "
                             f"{shorten(str(error), 300)}") from None
    if not model.has_rt_info(METADATA_KEY):
        return {}
    text = model.get_rt_info(METADATA_KEY).astype(str)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise OnnxModelError(f"{str(path)!r}: its {METADATA_KEY!r} rt_info is not valid JSON ({error})") from None


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
            ``encdec.quantize`` writes it with the same metadata in its ``rt_info``.
        backend: ``"onnxruntime"`` (the ``onnx`` extra) or ``"openvino"`` (the ``openvino`` extra).
        threads: CPU threads the runtime may use; default: ``torch.get_num_threads()``.

    Attributes:
        metadata: The file's whole ``encdec`` metadata, checked (``{}`` without it).
        input_spec: The size rule from the metadata (``None`` without it).
        num_classes: Output classes from the metadata.
        encdec_config: ``architecture``, ``mean``, ``std`` and, where recorded, ``class_names``,
            ``preprocessing`` and ``activation`` from the metadata.

    The file is read once (through one non-blocking open) and checked before the runtime sees it: its metadata
    field by field (``check_onnx_metadata``) and its graph for loops (``check_onnx_graph``); the runtime is given
    the bytes that were checked.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        OSError: ``path`` is not a regular file (a FIFO, a device) or is larger than ``MAX_ONNX_BYTES``.
        OnnxModelError: The file is not ONNX, its metadata holds a field of the wrong type or range, or its graph
            holds a ``Loop`` or ``Scan`` (a ``ValueError``).
        ValueError: ``backend`` is not one of ``BACKENDS``, or an IR file is given with ``backend="onnxruntime"``.
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
        source = repr(str(self.path))
        if self.path.suffix == ".xml":  # encdec.quantize's IR: OpenVINO reads the .xml and its .bin itself
            metadata = check_onnx_metadata(_read_ir_metadata(self.path), source)
            data: Any = str(self.path)
        else:
            proto, data = _read_model(self.path)
            check_onnx_graph(proto, source)
            metadata = check_onnx_metadata(_metadata_of(proto, source), source, _channels(proto.graph.output),
                                           _channels(_graph_inputs(proto)))
            del proto
        if not metadata:
            warnings.warn(f"{str(self.path)!r} has no encdec metadata (it was not written by encdec.export_onnx): "
                          "images are normalised with ImageNet's mean/std and not padded", stacklevel=2)
        spec = metadata.get("input_spec")
        self.input_spec = InputSpec(**spec) if spec else None
        self.num_classes = metadata.get("num_classes")
        self.metadata = metadata
        self.encdec_config = {key: metadata[key] for key in CONFIG_FROM_METADATA if metadata.get(key) is not None}
        self._run = self._onnxruntime(data) if backend == "onnxruntime" else self._openvino(data)
        del data
        self._keep: Any = None  # a temporary folder that must live as long as the predictor

    def _onnxruntime(self, data: bytes) -> Any:
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("backend='onnxruntime' needs onnxruntime: pip install 'encdec[onnx]'") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        from onnxruntime.capi import onnxruntime_pybind11_state as state

        try:  # the bytes checked, not the path again: a file swapped after the checks is never run
            session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except (state.Fail, state.InvalidGraph, state.InvalidArgument, state.InvalidProtobuf, state.NotImplemented,
                state.RuntimeException, state.NoSuchFile) as error:
            raise OnnxModelError(f"{str(self.path)!r}: ONNX Runtime cannot load its graph: {type(error).__name__}: "
                                 f"{shorten(str(error), 300)}") from None
        name = session.get_inputs()[0].name

        def run(x: np.ndarray) -> Any:
            try:
                return session.run(None, {name: x})[0]
            except (state.Fail, state.InvalidArgument, state.RuntimeException) as error:  # a graph the metadata
                raise OnnxModelError(  # misdescribes (another input size or channel count than it takes)
                    f"{str(self.path)!r}: ONNX Runtime cannot run its graph on a batch of shape {tuple(x.shape)}: "
                    f"{type(error).__name__}: {shorten(str(error), 300)}") from None

        return run

    def _openvino(self, data: Union[bytes, str]) -> Any:
        openvino = _import_openvino()
        # f32 explicitly: on CPUs with bfloat16 OpenVINO would otherwise lower the precision on its own (an int8
        # IR keeps its int8 layers)
        core = openvino.Core()
        model = core.read_model(data) if isinstance(data, str) else core.read_model(data, b"")
        compiled = core.compile_model(model, "CPU", {
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
