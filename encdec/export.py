"""Export encdec models to ONNX with a dynamic batch, height and width, checked against PyTorch in onnxruntime.

``export_onnx`` traces the model with the TorchScript-based exporter (``torch.onnx.export(dynamo=False)``), which
needs no network and records every size computation (the ResNet-50 U-Net's transposed-convolution output sizes,
the Pet U-Net's padding) as graph operations, so one file serves every input size the model accepts. The file
is written atomically, and by default it is run in onnxruntime at two input sizes and compared with PyTorch
before it is moved into place: a file that is there is a file that matched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .atomic import atomic_write
from .input_spec import InputSpec, input_spec_of, size_pair
from .normalization import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ExportError", "export_onnx", "export_metadata", "onnx_input_sizes"]

PathLike = Union[str, os.PathLike]
SizeLike = Union[int, Sequence[int]]

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
METADATA_KEY = "encdec"
METADATA_FORMAT = 1


class ExportError(RuntimeError):
    """An ONNX export that failed, or whose onnxruntime outputs differ from PyTorch's; the message says by how much."""


def export_onnx(
    model: nn.Module,
    path: PathLike,
    input_size: Optional[SizeLike] = None,
    *,
    dynamic: bool = True,
    batch_size: int = 1,
    opset: int = 17,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export ``model`` to an ONNX file whose batch, height and width are dynamic, and check it in onnxruntime.

    The model is traced in eval mode (its training flag is restored afterwards) on random images of
    ``input_size``; the input is named ``images`` (``N, C, H, W``, float32) and the output ``logits``
    (``N, num_classes, H, W`` for segmentation, ``N, num_classes`` for classification); the file's ``encdec``
    metadata entry records the size rule, normalisation and classes (``export_metadata``), which
    ``encdec.OnnxPredictor`` reads. With ``dynamic=True``
    any batch size and any height and width the model accepts work (``resfcn18`` flattens a fixed-size image,
    so only its batch is dynamic). Models whose decoder pads odd sizes (``unet_pet``) are traced at an odd size
    so the padding is part of the graph for every size.

    Args:
        model: An encdec model (or any module taking ``(N, C, H, W)`` images).
        path: Where to write the ``.onnx`` file; written atomically, so a failed export leaves nothing behind.
        input_size: ``H`` or ``(H, W)`` of the example input; default: the model's reference size.
        dynamic: Mark batch, height and width dynamic; ``False`` fixes every dimension to the example's.
        batch_size: Batch size of the example input.
        opset: ONNX opset version.
        check: Run the file in onnxruntime (at ``input_size`` and, when dynamic, at a second valid size) and
            compare with PyTorch; skipped when onnxruntime is not installed.
        atol: Largest accepted absolute difference, scaled by the output's magnitude when that exceeds 1.

    Returns:
        The path of the written file.

    Raises:
        InputSizeError: ``input_size`` does not fit the model (the message names the nearest valid sizes).
        ExportError: The exporter failed, or onnxruntime's outputs differ from PyTorch's by more than ``atol``.
        ImportError: The ``onnx`` extra is not installed (``pip install 'encdec[onnx]'``).

    Example:
        >>> import tempfile, encdec
        >>> from encdec.export import export_onnx
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> path = export_onnx(model, tempfile.mkdtemp() + "/unet.onnx", 64)
        >>> path.suffix
        '.onnx'
    """
    _require("onnx")
    path = Path(path)
    height, width = _resolve_size(model, input_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    spec = input_spec_of(model)
    spatial = dynamic and (spec is None or spec.fixed is None)
    _check_position_embeddings(model, (height, width), spatial)
    trace_size = _trace_size(model, (height, width)) if spatial else (height, width)
    cases = [(batch_size, (height, width))]  # what the check runs: (batch, (H, W))
    if dynamic:
        cases.append((batch_size + 1, onnx_input_sizes(model, (height, width))[-1] if spatial else (height, width)))
    was_training = model.training
    model.eval()
    try:
        example = _example(model, batch_size, trace_size)
        if spec is not None:  # the model's own input error (naming valid sizes), before any file is written
            spec.check(example, _name(model))

        def write(tmp: str) -> None:
            _export(model, example, tmp, dynamic=dynamic, spatial=spatial, opset=opset)
            _write_metadata(model, tmp)
            if check:
                _check(model, tmp, cases, atol)

        atomic_write(path, write)
    finally:
        model.train(was_training)
    return path


def onnx_input_sizes(model: nn.Module, input_size: SizeLike) -> List[Tuple[int, int]]:
    """Two valid ``(H, W)`` sizes for checking a dynamic export: ``input_size`` and a larger, non-square one.

    Example:
        >>> import encdec
        >>> onnx_input_sizes(encdec.resnet34_unet(), 64)
        [(64, 64), (128, 64)]
        >>> onnx_input_sizes(encdec.unet_pet(), 64)
        [(64, 64), (79, 79)]
    """
    height, width = size_pair(input_size, "input_size")
    spec = input_spec_of(model) or InputSpec(multiple=32)
    if spec.fixed is not None:
        return [(height, width)]
    second = _trace_size(model, (height, width))
    if second == (height, width):
        second = (spec.valid_size(height + 1), width)
    return [(height, width), second]


# ----------------------------------------------------------------------------------------------- helpers


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"ONNX export needs the {module!r} package: pip install 'encdec[onnx]' ({e})") from None


def _resolve_size(model: nn.Module, input_size: Optional[SizeLike]) -> Tuple[int, int]:
    if input_size is not None:
        return size_pair(input_size, "input_size")
    spec = input_spec_of(model)
    if spec is not None:
        return size_pair(spec.fixed if spec.fixed is not None else spec.reference)
    raise ValueError(f"{type(model).__name__} has no reference input size: pass input_size=(height, width)")


def _trace_size(model: nn.Module, size: Tuple[int, int]) -> Tuple[int, int]:
    """The size to trace at so size-dependent padding is recorded: each side odd at every padded level."""
    levels = sum(1 for m in model.modules() if getattr(m, "pad_to_skip", False))
    if not levels:
        return size
    period = 2 ** levels
    return tuple(s + (period - 1 - s) % period for s in size)  # type: ignore[return-value]


def _example(model: nn.Module, batch_size: int, size: Tuple[int, int]) -> Tensor:
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    spec = input_spec_of(model)
    channels = spec.channels if spec is not None else 3
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch_size, channels, *size, generator=generator).to(device=device, dtype=dtype)


def _axes(dynamic: bool, spatial: bool, segmentation: bool) -> Optional[Dict[str, Dict[int, str]]]:
    if not dynamic:
        return None
    images = {0: "batch", 2: "height", 3: "width"} if spatial else {0: "batch"}
    logits = {0: "batch", 2: "height", 3: "width"} if segmentation and spatial else {0: "batch"}
    return {INPUT_NAME: images, OUTPUT_NAME: logits}


def _check_position_embeddings(model: nn.Module, size: Tuple[int, int], spatial: bool) -> None:
    """Refuse what an encoder built with timm's ``dynamic_img_size`` cannot export: its position embeddings are
    resampled to each input size by antialiased bicubic interpolation, which ONNX lacks, so a file exports only
    at the size they were made for, and only with that height and width fixed."""
    encoder = getattr(model, "encoder", None)
    if not getattr(encoder, "dynamic_img_size", False):
        return
    config = getattr(getattr(encoder, "model", None), "pretrained_cfg", None) or {}
    native = tuple(config.get("input_size", (0, 0, 0))[1:])
    if spatial or tuple(size) != native:
        raise ExportError(
            f"{_name(model)}: encoder {encoder.name} resamples its position embeddings to the input size with an "
            f"operator ONNX lacks (antialiased bicubic interpolation), so it exports only at its own size: "
            f"export_onnx(model, path, {native[0] if native else 'SIZE'}, dynamic=False)")


def _export(model: nn.Module, example: Tensor, path: str, *, dynamic: bool, spatial: bool, opset: int) -> None:
    segmentation = _output(model, example).dim() == 4
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # Tracing runs the Python size checks once and warns that their results are constants; the
            # TorchScript exporter also announces its deprecation. Neither says anything about this file.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), path, dynamo=False, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes=_axes(dynamic, spatial, segmentation), opset_version=opset, do_constant_folding=True,
            )
    except Exception as e:
        hint = ""
        if "upsample_bicubic2d_aa" in str(e):
            hint = ("; the encoder resamples its position embeddings to the input size (timm's dynamic_img_size) "
                    "with antialiased bicubic interpolation, which ONNX lacks: export with dynamic=False at the "
                    "size you will predict at")
        elif "adaptive_avg_pool2d" in str(e):
            hint = ("; the model pools a map to fixed grids (pyramid pooling: pspnet, upernet), which torch's ONNX "
                    "exporter writes for one input size only: export with dynamic=False at a size whose pooled map "
                    "every grid divides (grids 1, 2, 3 and 6 of a stride-32 map: sides divisible by 192)")
        raise ExportError(f"ONNX export of {_name(model)} failed: {type(e).__name__}: {e}{hint}") from e


def export_metadata(model: nn.Module) -> Dict[str, Any]:
    """What ``export_onnx`` stores in the file's ``encdec`` metadata entry (JSON): what ``predict`` needs to
    prepare images for the model and read its output, so a predictor given only the file does the same: the
    architecture, classes, size rule and normalisation, and where the model's config records them its class names,
    training preprocessing (``encdec_config["preprocessing"]``: the size ``predict`` resizes to) and activation.

    Example:
        >>> import encdec
        >>> meta = export_metadata(encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128)))
        >>> meta["num_classes"], meta["input_spec"]["multiple"]
        (3, 16)
    """
    config = getattr(model, "encdec_config", None) or {}
    spec = input_spec_of(model)
    recorded = {key: config[key] for key in ("class_names", "preprocessing", "activation") if config.get(key)}
    return {
        "format": METADATA_FORMAT,
        "architecture": _name(model),
        "num_classes": getattr(model, "num_classes", None),
        "input_spec": dataclasses.asdict(spec) if spec is not None else None,
        "mean": list(config.get("mean", IMAGENET_MEAN)),
        "std": list(config.get("std", IMAGENET_STD)),
        **{key: [str(name) for name in value] if key == "class_names" else value for key, value in recorded.items()},
    }


def _write_metadata(model: nn.Module, path: str) -> None:
    import onnx

    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(export_metadata(model))
    onnx.save(proto, path)


def _output(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        out = model(x)
    if not isinstance(out, Tensor):
        raise ExportError(f"{_name(model)} returns a {type(out).__name__}; export_onnx needs a single tensor output")
    return out


def _check(model: nn.Module, path: str, cases: Sequence[Tuple[int, Tuple[int, int]]], atol: float) -> None:
    try:
        import onnxruntime
    except ImportError:
        warnings.warn("onnxruntime is not installed, so the exported file was not checked", stacklevel=3)
        return
    import onnx

    try:
        onnx.checker.check_model(path)
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"the ONNX file for {_name(model)} does not load: {type(e).__name__}: {e}") from e
    for batch, size in cases:
        x = _example(model, batch, size)
        expected = _output(model, x).float().cpu().numpy()
        try:
            (got,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.cpu().numpy()})
        except Exception as e:
            raise ExportError(
                f"onnxruntime cannot run the exported {_name(model)} on input {tuple(x.shape)}: {e}"
            ) from e
        if got.shape != expected.shape:
            raise ExportError(
                f"exported {_name(model)} gives shape {got.shape} for input {tuple(x.shape)}; PyTorch gives "
                f"{expected.shape}"
            )
        diff = float(abs(got - expected).max()) if expected.size else 0.0
        scale = max(1.0, float(abs(expected).max())) if expected.size else 1.0
        if not diff <= atol * scale:
            raise ExportError(
                f"exported {_name(model)} differs from PyTorch on input {tuple(x.shape)}: max abs difference "
                f"{diff:.3g} > {atol * scale:.3g} (atol {atol} x output scale {scale:.3g})"
            )


def _name(model: nn.Module) -> str:
    return (getattr(model, "encdec_config", None) or {}).get("architecture", type(model).__name__)
