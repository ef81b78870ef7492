"""What ``encdec predict`` writes, for inputs that once lost or overwrote predictions: masks of more than 256
classes (16-bit PNGs, exact in ``predictions.json``), images of one name in several folders, and errors a user can
cause, each one line and an exit status rather than a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import encdec
from encdec.cli import main

TINY = (4, 8, 16, 32, 64)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("encdec "), err
    return lines[-1]


def _image(path: Path, height: int, width: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def _segmenter(tmp_path: Path, classes: int, favoured: tuple, name: str) -> tuple:
    """A run folder of a U-Net with ``classes`` outputs whose head favours the classes ``favoured`` (its weights
    small and random, so pixels differ among them)."""
    torch.manual_seed(0)
    model = encdec.unet(num_classes=classes, widths=TINY).eval()
    with torch.no_grad():
        model.head.weight.mul_(0.01)
        model.head.bias.zero_()
        model.head.bias[list(favoured)] = 5.0
    folder = encdec.save_pretrained(model, tmp_path / name, class_names=[f"c{i}" for i in range(classes)])
    return folder, encdec.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------- more than 256 classes


def test_a_mask_of_300_classes_is_a_16_bit_png_holding_the_classes_exactly(capsys, tmp_path):
    folder, model = _segmenter(tmp_path, 300, (299,), "one-class")
    image = _image(tmp_path / "images" / "a.png", 24, 40)
    code, _, err = run(capsys, "predict", "--weights", folder, image, "--out", tmp_path / "out", "--device", "cpu",
                       "--precision", "fp32", "--size", "32")
    assert code == 0, err
    mask = Image.open(tmp_path / "out" / "a_mask.png")
    assert mask.mode == "I;16" and mask.size == (40, 24)
    assert np.array_equal(np.asarray(mask), np.full((24, 40), 299))  # 299, never 299 % 256 = 43
    records = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert records[0]["class_pixels"] == {"299": 24 * 40}
    assert Image.open(tmp_path / "out" / "a_overlay.png").size == (40, 24)

    folder, model = _segmenter(tmp_path, 300, (43, 255, 256, 280, 299), "several")
    images = [_image(tmp_path / "more" / f"{name}.png", 32, 32, seed) for seed, name in enumerate("bcd")]
    code, _, err = run(capsys, "predict", "--weights", folder, tmp_path / "more", "--out", tmp_path / "out2",
                       "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    records = json.loads((tmp_path / "out2" / "predictions.json").read_text())
    seen = set()
    for path, record in zip(images, records):
        expected = encdec.predict(model, np.asarray(Image.open(path).convert("RGB")), device="cpu",
                                  precision="fp32").numpy()
        written = np.asarray(Image.open(tmp_path / "out2" / f"{path.stem}_mask.png"))
        assert written.dtype == np.uint16 and np.array_equal(written, expected), path.name
        counts = {str(c): int(n) for c, n in zip(*np.unique(expected, return_counts=True))}
        assert record["class_pixels"] == counts
        seen.update(int(c) for c in counts)
    assert seen & {256, 280, 299} and seen <= {43, 255, 256, 280, 299}, seen  # classes above 255 were written


def test_a_mask_of_256_classes_stays_an_8_bit_palette_png(capsys, tmp_path):
    folder, _ = _segmenter(tmp_path, 256, (255,), "run")
    image = _image(tmp_path / "a.png", 32, 32)
    code, _, err = run(capsys, "predict", "--weights", folder, image, "--out", tmp_path / "out", "--device", "cpu")
    assert code == 0, err
    mask = Image.open(tmp_path / "out" / "a_mask.png")
    assert mask.mode == "P" and np.array_equal(np.asarray(mask), np.full((32, 32), 255))


# ---------------------------------------------------------------------------------------------- output names


def test_images_of_one_name_in_several_folders_keep_their_relative_paths(capsys, tmp_path):
    folder, model = _segmenter(tmp_path, 3, (1, 2), "run")
    first = _image(tmp_path / "in" / "p" / "q" / "x.png", 32, 40, seed=1)
    second = _image(tmp_path / "in" / "r" / "q" / "x.png", 48, 32, seed=2)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "predict", "--weights", folder, first, second, first, "--out", out,
                            "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["p/q/x_mask.png", "p/q/x_overlay.png", "r/q/x_mask.png", "r/q/x_overlay.png"]
    records = json.loads((out / "predictions.json").read_text())
    assert [r["image"] for r in records] == [str(first), str(second)]  # the repeated file is predicted once
    for path, record in zip((first, second), records):
        expected = encdec.predict(model, np.asarray(Image.open(path).convert("RGB")), device="cpu",
                                  precision="fp32").numpy()
        assert np.array_equal(np.asarray(Image.open(record["mask"])), expected)  # neither overwrote the other
    assert f"{first}: p/q/x_mask.png, p/q/x_overlay.png (" in stdout


def test_names_that_would_clash_get_distinct_outputs(capsys, tmp_path):
    folder, _ = _segmenter(tmp_path, 3, (1,), "run")
    root = tmp_path / "in"
    inputs = [_image(root / "x.png", 16, 16, 1), _image(root / "X.png", 16, 24, 2), _image(root / "x.jpg", 16, 32, 3),
              _image(root / "x_mask.png" / "y.png", 16, 40, 4), _image(root / "x.png.png", 16, 48, 5)]
    out = tmp_path / "out"
    code, _, err = run(capsys, "predict", "--weights", folder, *inputs, "--out", out, "--device", "cpu")
    assert code == 0, err
    records = json.loads((out / "predictions.json").read_text())
    masks = [r["mask"] for r in records]
    assert len(records) == 5 and len({m.lower() for m in masks}) == 5, masks  # distinct even ignoring case
    widths = [Image.open(m).size[0] for m in masks]
    assert widths == [16, 24, 32, 40, 48]  # each mask is its own image's
    assert all(Path(r["overlay"]).is_file() for r in records)


# ---------------------------------------------------------------------------------------------- errors users cause


def test_outputs_that_turn_nan_are_one_line_and_exit_status_1(capsys, tmp_path):
    model = encdec.custom_cnn(num_classes=3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(1e30)  # finite weights whose products overflow
    folder = encdec.save_pretrained(model, tmp_path / "run")
    image = _image(tmp_path / "a.png", 32, 32)
    code, _, err = run(capsys, "predict", "--weights", folder, image, "--out", tmp_path / "out", "--device", "cpu")
    assert code == 1
    assert f"{image}: predict, images 1-1: the model's outputs hold" in one_line_error(err)
    code, _, err = run(capsys, "eval", "--weights", folder, "--data", "shapes:4", "--device", "cpu")
    assert code in (0, 1)  # evaluation may meet finite outputs on other images; never a traceback
    assert "Traceback" not in err


def test_bad_values_in_a_weights_file_or_on_the_command_line_are_messages(capsys, tmp_path):
    from safetensors.torch import save_file

    state = encdec.custom_cnn(num_classes=3).state_dict()
    image = _image(tmp_path / "a.png", 32, 32)
    cases = [
        ({"class_names": json.dumps(["a"])}, "'class_names' lists 1 names for a model with 3 outputs"),
        ({"mean": json.dumps("abc")}, "'mean' must be a list of 1 to 4 finite numbers"),
        ({"std": json.dumps([0, 0, 0])}, "'std' must be positive numbers"),
        ({"kwargs": json.dumps({"num_classes": "x"})}, "num_classes must be a positive whole number, got 'x'"),
    ]
    for index, (extra, problem) in enumerate(cases):
        metadata = {"architecture": "custom_cnn", "kwargs": json.dumps({"num_classes": 3}), **extra}
        path = tmp_path / f"hostile{index}.safetensors"
        save_file(state, str(path), metadata=metadata)
        code, _, err = run(capsys, "predict", "--weights", path, image, "--out", tmp_path / "out")
        assert code == 1 and problem in one_line_error(err), (extra, err)
    torch.save(state, tmp_path / "plain.pth")
    for arg, code_wanted, problem in [
        ("num_classes=-3", 1, "custom_cnn: num_classes must be a positive whole number, got -3"),
        ("num_classes=2.5", 2, "custom_cnn: num_classes must be a positive whole number, got 2.5"),
        ("in_channels=[1]", 2, "custom_cnn: in_channels must be a positive whole number, got (1,)"),
    ]:
        code, _, err = run(capsys, "predict", "--model", "custom_cnn", "--weights", tmp_path / "plain.pth", image,
                           "--out", tmp_path / "out", "--arg", arg)
        assert code == code_wanted and one_line_error(err).endswith(problem), (arg, err)
    code, _, err = run(capsys, "info", "unet", "--arg", "widths=[0,0,0,0,0]")
    assert code == 2 and one_line_error(err).endswith(
        "unet: widths must be a positive whole number or a list of them, got (0, 0, 0, 0, 0)")


def test_a_missing_runtime_is_a_message_naming_the_extra(capsys, tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)
    folder, _ = _segmenter(tmp_path, 3, (1,), "run")
    code, _, err = run(capsys, "predict", "--weights", folder, _image(tmp_path / "a.png", 32, 32), "--out",
                       tmp_path / "out", "--backend", "openvino")
    assert code == 1 and "--backend openvino: backend='openvino' needs OpenVINO: pip install 'encdec[openvino]'" \
        in one_line_error(err)


def test_a_bug_still_shows_its_traceback(capsys, tmp_path, monkeypatch):
    """Only the library's errors and those a user causes become messages: anything else is raised."""
    import encdec.cli.predict as verb

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in encdec")

    monkeypatch.setattr(verb, "predict", broken)
    folder, _ = _segmenter(tmp_path, 3, (1,), "run")
    with pytest.raises(RuntimeError, match="a bug in encdec"):
        main([str(a) for a in ("predict", "--weights", folder, _image(tmp_path / "a.png", 32, 32), "--out",
                               tmp_path / "out")])
