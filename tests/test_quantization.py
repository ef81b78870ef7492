"""encdec.quantize: an int8 OpenVINO model that keeps a confident model's labels, or a named refusal."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

import encdec
from encdec.cli import main
from encdec.export import export_metadata
from encdec.quantization import QuantizationError, QuantizedPredictor, quantize

HAVE_NNCF = importlib.util.find_spec("nncf") is not None and importlib.util.find_spec("openvino") is not None
needs_nncf = pytest.mark.skipif(not HAVE_NNCF, reason="the openvino extra (OpenVINO, NNCF) is not installed")

SIZE = 32
WIDTHS = (4, 8, 16, 32, 64)
CLASSES = ["background", "reddish", "greenish"]
# Pixels (0..255) read with this mean/std give the values the model trained on: (p / 255 - m) / s = 3.4 p / 255 - 1
MEAN = STD = [1 / 3.4] * 3


def blocks(n: int, seed: int) -> tuple:
    """uint8 images (N, 3, S, S) of noise with rectangles raised in the red (class 1) or green (class 2) channel,
    and their label maps: a task a small U-Net learns in a few dozen steps, with clear margins."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, SIZE, SIZE, generator=g) * 0.3
    y = torch.zeros(n, SIZE, SIZE, dtype=torch.long)
    for i in range(n):
        for _ in range(3):
            c = int(torch.randint(1, 3, (1,), generator=g))
            h, w = (int(v) for v in torch.randint(4, SIZE // 2, (2,), generator=g))
            top = int(torch.randint(0, SIZE - h, (1,), generator=g))
            left = int(torch.randint(0, SIZE - w, (1,), generator=g))
            x[i, c - 1, top : top + h, left : left + w] += 1.5
            y[i, top : top + h, left : left + w] = c
    return ((x + 1) / 3.4 * 255).round().clamp(0, 255).to(torch.uint8), y


def normalised(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255 * 3.4 - 1  # the independent restatement of predict's (p / 255 - MEAN) / STD


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    images, labels = blocks(96, seed=0)
    model = encdec.unet(num_classes=3, widths=WIDTHS)
    loader = DataLoader(TensorDataset(normalised(images), labels), batch_size=16, shuffle=True)
    encdec.fit(model, loader, epochs=8, optimizer=torch.optim.Adam(model.parameters(), lr=1e-2), device="cpu",
               precision="fp32", progress=False, seed=0)
    model.encdec_config.update(mean=MEAN, std=STD, class_names=CLASSES,
                               preprocessing={"size": [SIZE, SIZE], "resize": "stretch"})
    return model.eval()


def fp32_labels(model, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(normalised(images)).argmax(1)


# ------------------------------------------------------------------------------- without training (fast)


def test_without_the_extra_the_error_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "nncf", None)  # an import of nncf now fails
    with pytest.raises(ImportError, match=r"pip install 'encdec\[openvino\]'"):
        quantize(encdec.unet(num_classes=2, widths=WIDTHS), torch.randn(4, 3, SIZE, SIZE))


def test_the_cli_names_the_extra_too(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "nncf", None)
    encdec.save_pretrained(encdec.unet(num_classes=2, widths=WIDTHS), tmp_path / "run")
    (tmp_path / "calib").mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((SIZE, SIZE, 3), np.uint8)).save(tmp_path / "calib" / f"{i}.png")
    code = main(["quantize", str(tmp_path / "run"), "--calibrate", str(tmp_path / "calib"), "--out",
                 str(tmp_path / "int8")])
    err = capsys.readouterr().err
    assert code == 1 and "encdec[openvino]" in err and not (tmp_path / "int8").exists()


@needs_nncf
@pytest.mark.parametrize("kwargs, message", [
    ({"min_agreement": 1.5}, "min_agreement must be a share of labels in \\[0, 1\\], got 1.5"),
    ({"held_out": 1.0}, "held_out must be a share"),
    ({"on_low_agreement": "ignore"}, "'raise' or 'warn', got 'ignore'"),
])
def test_arguments_out_of_range_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        quantize(encdec.unet(num_classes=2, widths=WIDTHS), torch.randn(4, 3, SIZE, SIZE), **kwargs)


@needs_nncf
def test_calibration_needs_two_images_and_an_existing_folder(tmp_path):
    model = encdec.unet(num_classes=2, widths=WIDTHS)
    with pytest.raises(ValueError, match="holds 1 image"):
        quantize(model, torch.randn(1, 3, SIZE, SIZE))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        quantize(model, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="holds no images"):
        quantize(model, tmp_path)


def test_export_metadata_carries_class_names_and_preprocessing():
    model = encdec.unet(num_classes=3, widths=WIDTHS)
    model.encdec_config.update(class_names=CLASSES, preprocessing={"size": [SIZE, SIZE], "resize": "stretch"})
    meta = export_metadata(model)
    assert meta["class_names"] == CLASSES and meta["preprocessing"] == {"size": [SIZE, SIZE], "resize": "stretch"}
    assert "class_names" not in export_metadata(encdec.unet(num_classes=3, widths=WIDTHS))


# ------------------------------------------------------------------------------- a trained model (slow)


@needs_nncf
@pytest.mark.slow
def test_int8_keeps_the_labels_of_a_confident_model(trained):
    calibration, _ = blocks(32, seed=1)
    quantized = quantize(trained, DataLoader(TensorDataset(calibration), batch_size=8))
    assert quantized.report.agreement >= 0.99 and quantized.report.method == "nncf"
    assert quantized.report.fp32_layers == 0 and quantized.report.held_out_images == 8
    images, labels = blocks(16, seed=2)  # fresh images, against the PyTorch model in fp32
    expected = fp32_labels(trained, images)
    got = encdec.predict(quantized, images, batch_size=4)
    assert float((got == expected).float().mean()) >= 0.99
    assert float((got == labels).float().mean()) >= float((expected == labels).float().mean()) - 0.01


@needs_nncf
@pytest.mark.slow
def test_a_ruined_calibration_is_refused_by_name_or_warned_about(trained):
    images, _ = blocks(32, seed=1)
    blank = torch.zeros_like(images[:24])  # activation ranges calibrated on blank images; held out: real ones
    ruined = list(torch.cat([blank, images[24:]]))
    with pytest.raises(QuantizationError, match="below min_agreement=99.00%") as caught:
        quantize(trained, ruined, fallback=False)
    assert caught.value.report.agreement < 0.99 and caught.value.report.method == "nncf"
    with pytest.warns(UserWarning, match="below min_agreement"):
        kept = quantize(trained, ruined, fallback=False, on_low_agreement="warn")
    assert kept.report.agreement == caught.value.report.agreement


@needs_nncf
@pytest.mark.slow
def test_accuracy_control_keeps_sensitive_layers_in_fp32_and_restores_agreement(trained):
    images, _ = blocks(32, seed=1)
    ruined = list(torch.cat([torch.zeros_like(images[:24]), images[24:]]))
    quantized = quantize(trained, ruined)
    assert quantized.report.method == "accuracy_control" and quantized.report.fp32_layers > 0
    assert quantized.report.agreement >= 0.99
    held = images[24:]
    assert float((encdec.predict(quantized, held) == fp32_labels(trained, held)).float().mean()) >= 0.99


@needs_nncf
@pytest.mark.slow
def test_saved_folder_loads_back_with_the_models_metadata(trained, tmp_path):
    calibration, _ = blocks(12, seed=3)
    quantized = quantize(trained, calibration)
    folder = quantized.save(tmp_path / "int8")
    loaded = QuantizedPredictor(folder)
    assert loaded.report == quantized.report
    assert loaded.input_spec == trained.input_spec and loaded.num_classes == 3
    for key in ("architecture", "mean", "std", "class_names", "preprocessing"):
        assert loaded.encdec_config[key] == trained.encdec_config[key], key
    images, _ = blocks(6, seed=4)
    assert torch.equal(encdec.predict(loaded, images), encdec.predict(quantized, images))
    with pytest.raises(FileNotFoundError, match="holds no model.xml"):
        QuantizedPredictor(tmp_path)


@needs_nncf
@pytest.mark.slow
def test_cli_quantize_then_predict_with_the_int8_folder(trained, tmp_path, capsys):
    run = encdec.save_pretrained(trained, tmp_path / "run", class_names=CLASSES, mean=MEAN, std=STD,
                                 preprocessing={"size": [SIZE, SIZE], "resize": "stretch"})
    for name, seed, count in (("calib", 1, 32), ("photos", 5, 6)):
        (tmp_path / name).mkdir()
        images, _ = blocks(count, seed=seed)
        for i, image in enumerate(images):
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(tmp_path / name / f"{i}.png")
    code = main(["quantize", str(run), "--calibrate", str(tmp_path / "calib"), "--out", str(tmp_path / "run-int8")])
    out = capsys.readouterr().out
    assert code == 0 and "held-out labels" in out and (tmp_path / "run-int8" / "model.xml").is_file()
    code = main(["predict", "--weights", str(tmp_path / "run-int8"), str(tmp_path / "photos"), "--out",
                 str(tmp_path / "int8-preds")])
    out = capsys.readouterr().out
    assert code == 0 and "background" in out and ("reddish" in out or "greenish" in out)  # names travelled too
    records = json.loads((tmp_path / "int8-preds" / "predictions.json").read_text())
    assert len(records) == 6
    images, _ = blocks(6, seed=5)
    expected = fp32_labels(trained, images)
    got = torch.stack([torch.from_numpy(np.asarray(Image.open(tmp_path / "int8-preds" / f"{i}_mask.png")).copy())
                       for i in range(6)]).long()
    assert float((got == expected).float().mean()) >= 0.99
    code = main(["predict", "--weights", str(tmp_path / "run-int8"), str(tmp_path / "photos"), "--out",
                 str(tmp_path / "x"), "--precision", "bf16"])
    assert code == 2 and "--precision does not apply" in capsys.readouterr().err
