"""encdec.OnnxPredictor: an exported file run in ONNX Runtime or OpenVINO gives predict's own outputs."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from torch import nn

import encdec
from encdec.deployment import OnnxPredictor

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # exports and runtimes: part of make test, left out of make check

BACKENDS = ["onnxruntime"] + (["openvino"] if importlib.util.find_spec("openvino") else [])
WIDTHS = (8, 16, 32, 64, 128)


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    model = encdec.unet(num_classes=4, widths=WIDTHS)
    model.encdec_config = dict(model.encdec_config, mean=[0.2, 0.3, 0.4], std=[0.5, 0.6, 0.7])
    return model.eval()


@pytest.fixture(scope="module", params=BACKENDS)
def predictor(request, segmenter, tmp_path_factory):
    path = encdec.export_onnx(segmenter, tmp_path_factory.mktemp("onnx") / "unet.onnx", 64)
    return OnnxPredictor(path, backend=request.param)


def test_the_file_carries_what_predict_needs(predictor, segmenter):
    assert predictor.input_spec == segmenter.input_spec
    assert predictor.num_classes == 4
    assert predictor.encdec_config["mean"] == [0.2, 0.3, 0.4] and predictor.encdec_config["std"] == [0.5, 0.6, 0.7]


def test_labels_equal_predict_for_tensors_of_sizes_the_model_does_not_take(predictor, segmenter):
    x = torch.randn(5, 3, 30, 45)
    reference = encdec.predict(segmenter, x, precision="fp32", optimize=False, probabilities=True)
    got = predictor.predict(x, probabilities=True, batch_size=2)
    assert got.shape == (5, 4, 30, 45)
    assert torch.allclose(got, reference, atol=1e-5)
    assert torch.equal(encdec.predict(predictor, x), reference.argmax(1))


def test_images_of_any_kind_are_normalised_with_the_recorded_mean(predictor, segmenter, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(20, 33), (41, 17)]]
    Image.fromarray(arrays[1]).save(tmp_path / "b.png")
    images = [arrays[0], str(tmp_path / "b.png"), torch.from_numpy(arrays[0]).permute(2, 0, 1)]
    expected = encdec.predict(segmenter, images, precision="fp32", optimize=False, probabilities=True)
    got = predictor.predict(images, probabilities=True)
    assert [g.shape for g in got] == [(4, 20, 33), (4, 41, 17), (4, 20, 33)]
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_classifier_from_model(backend):
    torch.manual_seed(0)
    model = encdec.custom_cnn(num_classes=4).eval()
    predictor = OnnxPredictor.from_model(model, backend=backend)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    expected = encdec.predict(model, images, precision="fp32", optimize=False, probabilities=True)
    got = predictor.predict(images, probabilities=True)
    assert got.shape == (3, 4) and torch.allclose(got, expected, atol=1e-5)


def test_errors_name_the_file_backend_or_option(tmp_path, predictor):
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        OnnxPredictor(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="backend='tensorrt' is not supported; use one of onnxruntime, openvino"):
        OnnxPredictor(predictor.path, backend="tensorrt")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="bad.onnx' is not a readable ONNX file"):
        OnnxPredictor(tmp_path / "bad.onnx")
    with pytest.raises(ValueError, match="compile=True compiles PyTorch models"):
        predictor.predict(torch.randn(1, 3, 32, 32), compile=True)


def test_a_missing_runtime_names_the_extra(monkeypatch, predictor):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ImportError, match=r"pip install 'encdec\[openvino\]'"):
        OnnxPredictor(predictor.path, backend="openvino")


def test_a_foreign_file_runs_with_a_warning(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1)).eval()
    x = torch.randn(1, 3, 16, 16)
    torch.onnx.export(model, (x,), str(tmp_path / "plain.onnx"), dynamo=False, input_names=["x"])
    with pytest.warns(UserWarning, match="has no encdec metadata"):
        predictor = OnnxPredictor(tmp_path / "plain.onnx")
    assert predictor.input_spec is None
    with torch.no_grad():
        assert torch.equal(predictor.predict(x), model(x).argmax(1))
