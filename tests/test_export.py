"""ONNX export: every segmentation model and classifier runs in onnxruntime at two input sizes and matches PyTorch.

Each model is exported once with ``check=False`` (so these comparisons are the test's own, not the exporter's),
then run in onnxruntime at the export size and at a second, differently shaped valid size with another batch
size, and compared with the PyTorch model within 1e-4 (relative to the output's scale where that exceeds 1).
The reference-size builders are exported at 64x64 (32x32 for the CIFAR classifiers); small variants cover
more sizes, including the odd sizes that make ``unet_pet`` pad.
"""

from __future__ import annotations

import json
import socket
from typing import Callable, List, Tuple

import numpy as np
import pytest
import torch
from torch import nn

import encdec
from encdec.deployment import check_onnx_graph, check_onnx_metadata
from encdec.export import ExportError, export_onnx, onnx_input_sizes

pytestmark = pytest.mark.slow  # part of make test; make check leaves it out

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

ATOL = 1e-4

Sizes = List[Tuple[int, int, int]]  # (batch, height, width)

SEGMENTATION: List[Tuple[str, Callable[[], nn.Module], int, Sizes]] = [
    ("unet-small", lambda: encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128)), 64,
     [(1, 64, 64), (3, 48, 80), (2, 16, 32)]),
    ("unet", encdec.unet, 64, [(1, 64, 64), (2, 48, 32)]),
    ("unet-resnet18-encoder", lambda: encdec.unet(encoder="resnet18", num_classes=2,
                                                  decoder_channels=(32, 16, 16, 8, 8)), 64,
     [(1, 64, 64), (2, 96, 64)]),
    ("unet_pet-small", lambda: encdec.unet_pet(widths=(8, 16, 32, 64, 128)), 64,
     [(1, 64, 64), (2, 40, 56), (3, 33, 47), (1, 16, 17)]),
    ("unet_pet", encdec.unet_pet, 64, [(1, 64, 64), (2, 47, 33)]),
    ("resnet34_unet", encdec.resnet34_unet, 64, [(1, 64, 64), (2, 128, 64)]),
    ("resnet50_unet", encdec.resnet50_unet, 64, [(1, 64, 64), (2, 40, 56)]),
    ("deeplabv3", lambda: encdec.deeplabv3(encoder="resnet18", num_classes=3), 64, [(1, 64, 64), (2, 96, 64)]),
    ("deeplabv3-torchvision", lambda: encdec.deeplabv3(encoder="resnet18", num_classes=3, layout="torchvision",
                                                       aux_loss=True), 64, [(1, 64, 64), (2, 96, 64)]),
    ("unetplusplus", lambda: encdec.unetplusplus(encoder="resnet18", num_classes=3), 64,
     [(1, 64, 64), (2, 96, 64)]),
    ("manet", lambda: encdec.manet(encoder="resnet18", num_classes=3), 64, [(1, 64, 64), (2, 96, 64)]),
    ("pan", lambda: encdec.pan(encoder="resnet18", num_classes=3), 128, [(1, 128, 128), (2, 192, 128)]),
    ("segformer-mit_b0", lambda: encdec.segformer(encoder="mit_b0", num_classes=3), 64,
     [(1, 64, 64), (2, 96, 64)]),
]
CLASSIFIERS: List[Tuple[str, Callable[[], nn.Module], int, Sizes]] = [
    ("custom_cnn", encdec.custom_cnn, 32, [(1, 32, 32), (3, 64, 48)]),
    ("vgg16_cifar", encdec.vgg16_cifar, 32, [(1, 32, 32), (2, 64, 64)]),
    ("resnet50_cifar", encdec.resnet50_cifar, 32, [(1, 32, 32), (2, 64, 48)]),
    ("resnet18_classifier", lambda: encdec.resnet18_classifier(num_classes=5), 64, [(1, 64, 64), (2, 32, 96)]),
    ("resfcn18", lambda: encdec.resfcn18(num_classes=4, input_size=16), 16, [(1, 16, 16), (3, 16, 16)]),
]


def realistic(model: nn.Module) -> nn.Module:
    """Eval mode with non-trivial BatchNorm statistics, so normalisation is not the identity."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def run_onnx(path, x: torch.Tensor) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return out


def assert_matches(model: nn.Module, path, sizes: Sizes) -> List[float]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(1)
    diffs = []
    for batch, h, w in sizes:
        x = torch.randn(batch, getattr(model, "in_channels", 3), h, w, generator=g)
        with torch.no_grad():
            expected = model(x).numpy()
        (got,) = session.run(["logits"], {"images": x.numpy()})
        assert got.shape == expected.shape, (batch, h, w)
        diff = float(np.abs(got - expected).max())
        scale = max(1.0, float(np.abs(expected).max()))
        assert diff <= ATOL * scale, f"input {batch}x{h}x{w}: max abs diff {diff:.3g} (output scale {scale:.3g})"
        diffs.append(diff)
    return diffs


def assert_onnx_predictor_accepts(path, model: nn.Module) -> None:
    """encdec's own export passes the checks ``OnnxPredictor`` makes of any file: no Loop or Scan, one input,
    metadata of the right types whose class count is the graph's."""
    proto = onnx.load(str(path))
    check_onnx_graph(proto, str(path))
    (entry,) = [e for e in proto.metadata_props if e.key == "encdec"]
    metadata = check_onnx_metadata(json.loads(entry.value), str(path), model.num_classes)
    assert metadata["num_classes"] == model.num_classes


def input_dims(path) -> List[object]:
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param or d.dim_value for d in dims]


@pytest.mark.parametrize("name,build,size,sizes", SEGMENTATION, ids=[c[0] for c in SEGMENTATION])
def test_segmentation_models_export_with_dynamic_height_and_width(tmp_path, name, build, size, sizes):
    model = realistic(build())
    path = export_onnx(model, tmp_path / f"{name}.onnx", size, check=False)
    assert input_dims(path) == ["batch", 3, "height", "width"]
    out_dims = [d.dim_param or d.dim_value for d in
                onnx.load(str(path)).graph.output[0].type.tensor_type.shape.dim]
    assert out_dims == ["batch", model.num_classes, "height", "width"]
    assert_onnx_predictor_accepts(path, model)
    diffs = assert_matches(model, path, sizes)
    print(f"\n{name}: max abs diffs {[f'{d:.1e}' for d in diffs]}")


@pytest.mark.parametrize("name,build,size,sizes", CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_classifiers_export(tmp_path, name, build, size, sizes):
    model = realistic(build())
    path = export_onnx(model, tmp_path / f"{name}.onnx", size, check=False)
    expected_dims = ["batch", 3, 16, 16] if name == "resfcn18" else ["batch", 3, "height", "width"]
    assert input_dims(path) == expected_dims
    assert_onnx_predictor_accepts(path, model)
    diffs = assert_matches(model, path, sizes)
    print(f"\n{name}: max abs diffs {[f'{d:.1e}' for d in diffs]}")


def test_static_export_fixes_every_dimension(tmp_path):
    model = realistic(encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)))
    path = export_onnx(model, tmp_path / "static.onnx", (32, 48), dynamic=False, batch_size=2)
    assert input_dims(path) == [2, 3, 32, 48]
    with pytest.raises(Exception, match="(?i)dimension|shape|index"):
        run_onnx(path, torch.zeros(2, 3, 64, 64))


def test_pyramid_pooling_exports_at_one_size_and_the_dynamic_refusal_says_so(tmp_path):
    model = realistic(encdec.upernet(encoder="resnet18", num_classes=3))
    with pytest.raises(ExportError, match="dynamic=False at a size whose pooled map every grid divides"):
        export_onnx(model, tmp_path / "dynamic.onnx", 64, check=False)
    path = export_onnx(model, tmp_path / "static.onnx", 192, dynamic=False, batch_size=1, check=False)
    assert input_dims(path) == [1, 3, 192, 192]
    assert_matches(model, path, [(1, 192, 192)])


def test_a_vit_with_resampled_position_embeddings_exports_at_its_own_size_only(tmp_path):
    pytest.importorskip("timm")
    model = realistic(encdec.dpt(encoder="timm:vit_tiny_patch16_224", num_classes=3))
    for size, dynamic in ((224, True), (96, False)):
        with pytest.raises(ExportError, match=r"exports only at its own size: export_onnx\(model, path, 224, "
                                              r"dynamic=False\)"):
            export_onnx(model, tmp_path / "refused.onnx", size, dynamic=dynamic, check=False)
    assert not (tmp_path / "refused.onnx").exists()
    path = export_onnx(model, tmp_path / "dpt.onnx", 224, dynamic=False, batch_size=1)
    assert_matches(model, path, [(1, 224, 224)])


def test_builtin_check_passes_and_the_file_is_written(tmp_path):
    model = realistic(encdec.unet_pet(widths=(4, 8, 16, 32, 64)))
    path = export_onnx(model, tmp_path / "sub" / "pet.onnx", 48)
    assert path.is_file() and sorted(p.name for p in path.parent.iterdir()) == ["pet.onnx"]


class _SizeBranch(nn.Module):
    """A Python branch on the input size: tracing freezes it, so the dynamic export is wrong at other sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if x.shape[-2] > 40:
            return y * 2
        return y


def test_builtin_check_refuses_a_wrong_export_and_leaves_no_file(tmp_path):
    path = tmp_path / "wrong.onnx"
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(_SizeBranch(), path, 32)
    assert list(tmp_path.iterdir()) == []


def test_invalid_size_is_refused_before_writing(tmp_path):
    with pytest.raises(encdec.InputSizeError, match="Nearest valid sizes: 64 and 128"):
        export_onnx(encdec.resnet34_unet(), tmp_path / "x.onnx", 100)
    with pytest.raises(ValueError, match="input_size"):
        export_onnx(encdec.custom_cnn(), tmp_path / "x.onnx", (32, 0))
    assert list(tmp_path.iterdir()) == []


def test_training_mode_is_restored_and_default_size_used(tmp_path):
    model = encdec.custom_cnn(num_classes=2).train()
    path = export_onnx(model, tmp_path / "cnn.onnx", check=False)
    assert model.training
    assert run_onnx(path, torch.zeros(1, 3, 32, 32)).shape == (1, 2)  # the registry's 32x32 reference size


def test_export_needs_no_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("export tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    export_onnx(encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)), tmp_path / "u.onnx", 32)


def test_check_sizes_follow_the_size_rule():
    assert onnx_input_sizes(encdec.resnet50_unet(), 64) == [(64, 64), (72, 64)]
    assert onnx_input_sizes(encdec.unet_pet(), (47, 40)) == [(47, 40), (47, 47)]
    assert onnx_input_sizes(encdec.resfcn18(input_size=16), 16) == [(16, 16)]
