"""The ``encdec`` command: every verb on synthetic data and on generated dataset trees, and its error messages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import encdec
from encdec.cli import main, parse_data
from encdec.summary import model_summary

try:  # tests/ as a package, or tests/ on sys.path
    from tests import reference as ref
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref
    from fixtures import trees

TINY = "--arg=widths=[4,8,16,32,64]"
CPU = ("--device", "cpu", "--precision", "fp32", "--workers", "0", "--quiet")
FAST = (*CPU, "--no-plots")  # training runs whose pictures are not under test


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines, "expected an error message"
    return lines[-1]


# ------------------------------------------------------------------------------------------ list / info


def test_list_names_and_table(capsys):
    code, out, _ = run(capsys, "list", "--names")
    assert code == 0
    assert out.split() == encdec.list_models()
    code, out, _ = run(capsys, "list", "resnet*_unet")
    assert code == 0
    assert "resnet34_unet" in out and "38,345,024" in out and "divisible by 64" in out
    assert "ResNet_UNet_best_model_90.pth" in out and "vgg16_cifar" not in out


def test_list_json_counts_parameters(capsys):
    code, out, _ = run(capsys, "list", "--json", "--task", "classification")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["vgg16_cifar"]["parameters"] == 14_983_498
    assert rows["resfcn18"]["parameters"] == 457_204_500  # counted on the meta device, nothing allocated
    assert all(r["task"] == "classification" for r in rows.values())


def test_info_reports_flops_memory_layers_and_checkpoints(capsys):
    code, out, _ = run(capsys, "info", "vgg16_cifar", "--batch-size", "4")
    assert code == 0
    assert "14,983,498" in out
    assert "GFLOPs" in out or "MFLOPs" in out
    assert "Adam state" in out and "activations" in out
    assert "features" in out and "head" in out
    assert "vgg16_epoch250.ckpt" in out and "encdec convert vgg16_epoch250.ckpt" in out


def test_info_names_both_resnet50_unet_layouts(capsys):
    code, out, _ = run(capsys, "info", "resnet50_unet")
    assert code == 0
    assert "parameters: 22,605,718" in out  # the course listing's network, without its never-used UnetConv2_1
    assert "course (default) 22,605,718 parameters; narrow 11,006,614 parameters; this is course" in out
    code, out, _ = run(capsys, "info", "resnet50_unet", "--arg", 'variant="narrow"', "--json")
    report = json.loads(out)
    assert report["parameters"] == 11_006_614 and report["variants"]["built"] == "narrow"


def test_info_shows_reference_checkpoints_only_for_the_configuration_that_loads_them(capsys):
    _, out, _ = run(capsys, "info", "unet", "--encoder", "resnet34", "--size", "64")
    assert "UNet_best_model.pth" not in out and "reference checkpoints: none" in out
    _, out, _ = run(capsys, "info", "unet", "--size", "64")
    assert "UNet_best_model.pth: Pascal VOC 2012" in out


def test_info_lists_a_module_run_several_times_once(capsys):
    code, out, _ = run(capsys, "info", "resnet34_unet", "--size", "64")
    assert code == 0
    rows = [line for line in out.splitlines() if line.strip().startswith("decoder.dropout")]
    assert len(rows) == 1 and "(run 4x)" in rows[0]  # one Dropout module after four decoder blocks


def test_info_and_list_show_the_encoder_based_builders(capsys):
    code, out, _ = run(capsys, "info", "fpn", "--encoder", "efficientnet_b0", "--json")
    assert code == 0
    report = json.loads(out)
    with torch.device("meta"):
        model = encdec.fpn(encoder="efficientnet_b0")
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert report["flops_per_image"] > 0 and report["size_rule"] == "height and width divisible by 32"
    code, out, _ = run(capsys, "info", "deeplabv3plus", "--encoder", "resnet18")
    assert code == 0 and "decoder.aspp" in out and "FLOPs" in out
    code, _, err = run(capsys, "info", "vgg16_cifar", "--encoder", "resnet34")
    builders = "deeplabv3, deeplabv3plus, dpt, fpn, linknet, manet, pan, pspnet, segformer, unet, unetplusplus, upernet"
    assert code == 2 and builders in err
    code, _, err = run(capsys, "info", "fpn", "--encoder", "resnet43")
    assert code == 2 and "Did you mean 'resnet34'" in err
    code, out, _ = run(capsys, "list", "--names")
    assert {"fpn", "deeplabv3plus", "linknet", "pspnet"} <= set(out.split())


def test_analyze_model_matches_real_forward():
    report = model_summary("custom_cnn", 32, batch_size=2)
    model = encdec.custom_cnn()
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert report["output_shape"] == list(model(torch.zeros(2, 3, 32, 32)).shape[1:])  # per image
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.zeros(1, 3, 32, 32))
    assert report["flops_per_image"] == counter.get_total_flops()
    memory = report["memory"]
    assert memory["total"] == memory["weights"] + memory["gradients"] + memory["adam_state"] + memory["activations"]
    assert memory["activations"] > 0


def test_info_json_and_bad_size(capsys):
    code, out, _ = run(capsys, "info", "unet", "--size", "64", "--batch-size", "1", "--num-classes", "2",
                       TINY, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["input_shape"] == [3, 64, 64] and report["output_shape"] == [2, 64, 64]  # per image, no batch
    code, text, _ = run(capsys, "info", "unet", "--size", "64", "--batch-size", "4", "--num-classes", "2", TINY)
    assert "input 3x64x64 -> output 2x64x64 per image" in text
    code, _, err = run(capsys, "info", "resnet34_unet", "--size", "100")
    assert code == 2
    assert "64 and 128" in one_error_line(err)


def test_a_missing_dataset_folder_names_the_data_option_and_the_layout(capsys, tmp_path):
    missing = tmp_path / "VOC2012"
    code, _, err = run(capsys, "train", "--model", "unet", "--data", f"voc:{missing}")
    assert code == 1
    assert one_error_line(err) == (
        f"encdec train: error: dataset folder {missing} does not exist; --data voc:PATH expects the VOC2012 folder "
        "with JPEGImages/*.jpg, SegmentationClass/*.png and ImageSets/Segmentation/{train,val}.txt (or its "
        "VOCdevkit parent)")
    missing.mkdir()  # a folder without the layout: the same advice after what was looked for
    code, _, err = run(capsys, "train", "--model", "vgg16_cifar", "--data", f"cifar10:{missing}")
    assert code == 1 and "; --data cifar10:PATH expects " in one_error_line(err)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["info", "unett"], "Did you mean 'unet'"),
        (["info", "unet", "--arg", "depth=3"], "takes no such argument"),
        (["train", "--model", "unet", "--data", "coco:/data"], "unknown kind 'coco'"),
        (["train", "--model", "unet", "--data", "voc"], "--data voc:PATH"),
        (["train", "--model", "unet", "--epochs", "0"], "expected a positive number"),
        (["train", "--model", "vgg16_cifar", "--data", "pet:/nowhere"], "dataset folder"),
        (["eval", "--weights", "x.pth"], "--data"),
        (["convert", "a.pth"], "OUT"),
        (["frobnicate"], "invalid choice"),
        (["eval", "--weights", "x.pth", "--data", "shapes:4", "--device", "potato"], "'potato' is not a device"),
        (["train", "--model", "unet", "--workers", "-1"], "expected an integer >= 0, got '-1'"),
        (["train", "--model", "unet", "--seed", "-1"], "expected an integer >= 0, got '-1'"),
        (["predict", "--weights", "x.pth", "a.png", "--alpha", "5"], "expected a number from 0 to 1, got '5'"),
        (["predict", "--weights", "x.pth", "a.png", "--palette", "bogus"], "invalid choice: 'bogus'"),
        (["train", "--model", "unet", "--data", "shapes:8", "--precision", "fp16", "--device", "cpu"],
         "--precision fp16 needs a CUDA device"),
        (["train", "--model", "unet", "--arg", "widths=[4,8,16]"], "unet: "),
        (["eval", "--weights", "x.pth", "--data", "shapes:4", "--split", "bogus"],
         "--split 'bogus' is not a split of --data shapes; choose from val"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(capsys, args, expected):
    code, _, err = run(capsys, *args)
    expected_code = 1 if expected == "dataset folder" else 2
    assert code == expected_code
    assert expected in one_error_line(err)


def test_missing_dataset_folder_names_the_layout(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--model", "unet", "--data", f"voc:{tmp_path / 'VOC2012'}", *FAST)
    assert code == 1
    line = one_error_line(err)
    assert "JPEGImages" in line and "SegmentationClass" in line and "ImageSets/Segmentation" in line
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "eval", "--model", "custom_cnn", "--weights", tmp_path / "none.pth",
                       "--data", f"cifar10:{tmp_path / 'empty'}")
    assert code == 1 and "no such file" in one_error_line(err)


def test_task_mismatch_is_a_usage_error(capsys, tmp_path):
    trees.write_cifar_batches(tmp_path, per_batch=2)
    code, _, err = run(capsys, "train", "--model", "unet", "--data", f"cifar10:{tmp_path}", *FAST)
    assert code == 2 and "classification dataset" in one_error_line(err)


def test_voc_gives_22_outputs_to_models_built_like_their_22_output_reference():
    from encdec.cli.train import _num_classes

    voc, unet = parse_data("voc:/data/VOC2012"), encdec.model_info("unet")
    assert _num_classes(voc, unet, {}, None) == 22  # the reference U-Net: 21 classes + the boundary
    assert _num_classes(voc, unet, {"encoder": "resnet34"}, None) == 21  # a U-Net on an encoder: VOC's 21
    assert _num_classes(voc, encdec.model_info("resnet50_unet"), {}, None) == 22
    assert _num_classes(voc, encdec.model_info("fpn"), {}, None) == 21
    assert _num_classes(voc, unet, {}, 5) == 5
    assert _num_classes(parse_data("shapes"), unet, {}, None) is None  # the dataset's


def test_parse_data():
    assert parse_data("shapes").kind == "shapes"
    assert parse_data("pets:/x").kind == "pet"
    assert parse_data("cifar:/x").path == Path("/x")


def test_every_verb_has_help_with_examples(capsys):
    for verb in ("list", "info", "convert", "train", "eval", "predict", "quantize", "demo"):
        code, out, _ = run(capsys, verb, "--help")
        assert code == 0 and "examples:" in out, verb


@pytest.mark.slow
def test_python_dash_m_runs_the_command():
    done = subprocess.run([sys.executable, "-m", "encdec", "info", "unett"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Did you mean 'unet'" in done.stderr


# ------------------------------------------------------------------------------------------ convert


def test_convert_reference_checkpoint_to_safetensors(capsys, tmp_path):
    reference = ref.randomize_(ref.CustomCNN(num_classes=5), seed=1)
    src = tmp_path / "custom_cnn.pth"
    torch.save(reference.state_dict(), src)
    dst = tmp_path / "cnn.safetensors"
    code, out, _ = run(capsys, "convert", src, dst, "--model", "custom_cnn", "--num-classes", "5",
                       "--class-names", "a,b,c,d,e")
    assert code == 0 and "verified" in out
    model = encdec.from_pretrained(dst).eval()
    assert model.encdec_config["class_names"] == ["a", "b", "c", "d", "e"]
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference.eval()(x), atol=1e-5, rtol=0)
    folder = tmp_path / "as_folder"
    code, _, _ = run(capsys, "convert", src, folder, "--model", "custom_cnn", "--num-classes", "5")
    assert code == 0 and (folder / "config.json").is_file()


def test_convert_wrong_architecture_fails_with_hint(capsys, tmp_path):
    src = tmp_path / "cnn.pth"
    torch.save(ref.CustomCNN(num_classes=5).state_dict(), src)
    code, _, err = run(capsys, "convert", src, tmp_path / "out.safetensors", "--model", "custom_cnn")
    assert code == 1
    assert "num_classes=5" in err
    code, _, err = run(capsys, "convert", tmp_path / "missing.pth", tmp_path / "o.safetensors", "--model", "unet")
    assert code == 1 and "no such checkpoint file" in one_error_line(err)
    code, _, err = run(capsys, "convert", src, tmp_path / "o.onnx", "--model", "custom_cnn")
    assert code == 2 and ".safetensors" in one_error_line(err)


# ------------------------------------------------------------------------------------------ train / eval / predict


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "shapes"
    code = main(["train", "--model", "unet", TINY, "--data", "shapes:16", "--size", "32", "--epochs", "1",
                 "--batch-size", "8", "--out", str(out), *CPU])
    assert code == 0
    return out


def test_train_on_shapes_writes_everything(shapes_run):
    for name in ("config.json", "model.safetensors", "best.safetensors", "last.pt", "history.json", "curves.png",
                 "predictions.png"):
        assert (shapes_run / name).is_file(), name
    history = json.loads((shapes_run / "history.json").read_text())
    assert len(history["epochs"]) == 1 and "val_miou" in history["epochs"][0]
    model = encdec.from_pretrained(shapes_run)
    assert model.encdec_config["class_names"] == ["background", "circle", "square"]


def test_train_resume_continues(capsys, shapes_run, tmp_path):
    import shutil

    out = tmp_path / "resumed"
    shutil.copytree(shapes_run, out)
    code, _, err = run(capsys, "train", "--model", "unet", TINY, "--data", "shapes:16", "--size", "32",
                       "--epochs", "2", "--batch-size", "8", "--out", out, "--resume", *CPU[:-1], "--no-plots")
    assert code == 0, err
    assert "resumed from" in err
    assert [e["epoch"] for e in json.loads((out / "history.json").read_text())["epochs"]] == [1, 2]


def test_eval_prints_table_and_json(capsys, shapes_run):
    code, out, _ = run(capsys, "eval", "--weights", shapes_run, "--data", "shapes:16", "--size", "32",
                       "--device", "cpu")
    assert code == 0
    assert "miou" in out and "pixel_accuracy" in out and "circle" in out
    code, out, _ = run(capsys, "eval", "--weights", shapes_run / "model.safetensors", "--data", "shapes:16",
                       "--size", "32", "--device", "cpu", "--json")
    scores = json.loads(out)
    assert 0.0 <= scores["miou"] <= 1.0 and scores["model"] == "unet"
    code, _, err = run(capsys, "eval", "--model", "custom_cnn", "--weights", shapes_run / "model.safetensors",
                       "--data", "shapes:16", "--device", "cpu")
    assert code == 2
    assert "holds a unet, not a custom_cnn" in one_error_line(err)


def test_predict_writes_masks_and_overlays(capsys, shapes_run, tmp_path):
    from encdec.datasets import SyntheticShapes

    folder = tmp_path / "images"
    folder.mkdir()
    ds = SyntheticShapes(n=2, size=40, normalize=False)
    for i in range(2):
        Image.fromarray((ds.draw(i)[0].transpose(1, 2, 0) * 255).astype(np.uint8)).save(folder / f"img{i}.png")
    out = tmp_path / "preds"
    code, stdout, _ = run(capsys, "predict", "--weights", shapes_run, folder, "--out", out, "--device", "cpu")
    assert code == 0
    mask = Image.open(out / "img0_mask.png")
    assert mask.mode == "P" and mask.size == (40, 40)
    assert np.asarray(mask).max() < 3
    assert Image.open(out / "img1_overlay.png").size == (40, 40)
    assert len(json.loads((out / "predictions.json").read_text())) == 2
    # two images sharing a stem get distinct outputs
    Image.open(folder / "img1.png").convert("RGB").save(folder / "img0.jpg")
    code, _, _ = run(capsys, "predict", "--weights", shapes_run, folder / "img0.png", folder / "img0.jpg",
                     "--out", tmp_path / "same-stem", "--device", "cpu")
    assert code == 0
    records = json.loads((tmp_path / "same-stem" / "predictions.json").read_text())
    assert len({r["mask"] for r in records}) == 2 and all(Path(r["mask"]).is_file() for r in records)
    code, _, err = run(capsys, "predict", "--weights", shapes_run, tmp_path / "nope.png", "--out", out)
    assert code == 1 and "no such image" in one_error_line(err)
    code, _, err = run(capsys, "predict", "--weights", tmp_path / "no.pth", folder / "img0.png", "--out", out)
    assert code == 1 and "no such file" in one_error_line(err)


def _shape_images(folder: Path, count: int, size: int = 40) -> None:
    from encdec.datasets import SyntheticShapes

    folder.mkdir(parents=True, exist_ok=True)
    ds = SyntheticShapes(n=count, size=size, normalize=False)
    for i in range(count):
        Image.fromarray((ds.draw(i)[0].transpose(1, 2, 0) * 255).astype(np.uint8)).save(folder / f"img{i}.png")


def test_predict_carries_on_past_unreadable_images_and_says_so(capsys, shapes_run, tmp_path):
    folder = tmp_path / "images"
    _shape_images(folder, 2)
    (folder / "b_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    good = (folder / "img0.png").read_bytes()
    (folder / "c_truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "preds"
    code, stdout, err = run(capsys, "predict", "--weights", shapes_run, folder, "--out", out, "--device", "cpu")
    assert code == 1
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["img0_mask.png", "img1_mask.png"]
    assert len(json.loads((out / "predictions.json").read_text())) == 2
    assert "2 of 4 images could not be predicted" in err
    assert "b_broken.jpg: not a readable image" in err and "c_truncated.png: not a readable image" in err
    assert "left out 1 file that are not images" in err and "notes.txt" in err


def test_predict_batches_its_images_and_writes_what_one_image_at_a_time_did(capsys, shapes_run, tmp_path,
                                                                             monkeypatch):
    import encdec.cli.predict as verb
    from encdec.viz import overlay

    folder = tmp_path / "images"
    _shape_images(folder, 3, size=40)
    _shape_images(folder / "more", 2, size=48)
    for i in range(2):
        (folder / "more" / f"img{i}.png").rename(folder / f"wide{i}.png")
    (folder / "d_broken.png").write_bytes(b"not a png")
    calls = []
    monkeypatch.setattr(verb, "predict", lambda *a, **k: calls.append(len(a[1])) or encdec.predict(*a, **k))
    for size in ((), ("--size", "40")):  # the recorded training size (one batch), and --size
        out = tmp_path / f"preds{len(size)}"
        calls.clear()
        code, stdout, err = run(capsys, "predict", "--weights", shapes_run, folder, "--out", out, "--device", "cpu",
                                "--precision", "fp32", "--batch-size", "4", *size)
        assert code == 1 and "d_broken.png: not a readable image" in err
        assert calls == [5]  # one call for every readable image
        model = encdec.from_pretrained(shapes_run)
        names = ["img0", "img1", "img2", "wide0", "wide1"]
        assert sorted(p.name for p in out.iterdir()) == sorted(
            [f"{n}_mask.png" for n in names] + [f"{n}_overlay.png" for n in names] + ["predictions.json"])
        records = json.loads((out / "predictions.json").read_text())
        assert [Path(r["image"]).name for r in records] == [f"{n}.png" for n in names]
        for name, record in zip(names, records):  # what predicting each image on its own writes
            image = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
            kwargs = {"size": int(size[1])} if size else {}
            expected = encdec.predict(model, image, device="cpu", precision="fp32", **kwargs).numpy().astype(np.uint8)
            mask = np.asarray(Image.open(out / f"{name}_mask.png"))
            assert np.array_equal(mask, expected), name
            assert np.array_equal(np.asarray(Image.open(out / f"{name}_overlay.png")),
                                  overlay(image, expected, alpha=0.5, palette="shapes")), name
            assert record["mask"] == str(out / f"{name}_mask.png")
            assert record["class_pixels"] == {str(c): int(n) for c, n in enumerate(np.bincount(expected.ravel())) if n}
            assert f"{folder / name}.png: {name}_mask.png, {name}_overlay.png (" in stdout
    code, _, err = run(capsys, "predict", "--weights", shapes_run, folder, "--out", tmp_path / "x", "--batch-size",
                       "0")
    assert code == 2 and "--batch-size" in err


def test_predict_checks_out_before_loading_the_model(capsys, tmp_path):
    _shape_images(tmp_path / "images", 1)
    (tmp_path / "taken").write_text("a file")
    code, _, err = run(capsys, "predict", "--weights", tmp_path / "no.pth", tmp_path / "images", "--out",
                       tmp_path / "taken")
    assert code == 1 and "--out" in one_error_line(err) and "is a file" in one_error_line(err)
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, _, err = run(capsys, "predict", "--weights", tmp_path / "no.pth", tmp_path / "images", "--out",
                           locked / "sub")
        assert code == 1 and "not a writable directory" in one_error_line(err)


@pytest.mark.slow
def test_predict_in_onnxruntime_writes_the_same_masks(capsys, shapes_run, tmp_path):
    pytest.importorskip("onnxruntime")
    _shape_images(tmp_path / "images", 2, size=44)
    for backend, extra in (("torch", ["--precision", "fp32"]), ("onnxruntime", [])):  # ONNX runs in fp32
        code, _, err = run(capsys, "predict", "--weights", shapes_run, tmp_path / "images", "--out",
                           tmp_path / backend, "--device", "cpu", "--backend", backend, *extra)
        assert code == 0, err
    for name in ("img0_mask.png", "img1_mask.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "torch" / name)),
                              np.asarray(Image.open(tmp_path / "onnxruntime" / name)))
    code, _, err = run(capsys, "predict", "--weights", shapes_run, tmp_path / "images", "--out", tmp_path / "x",
                       "--backend", "onnxruntime", "--compile")
    assert code == 1 and "--compile applies to the PyTorch backend" in one_error_line(err)


@pytest.mark.slow
def test_eval_takes_an_interrupted_run_folder_through_its_best_weights(capsys, shapes_run, tmp_path):
    import shutil

    out = tmp_path / "interrupted"  # what a run stopped mid-way leaves: per-epoch files, no final model files
    shutil.copytree(shapes_run, out)
    (out / "config.json").unlink()
    (out / "model.safetensors").unlink()
    code, folder_scores, err = run(capsys, "eval", "--weights", out, "--data", "shapes:16", "--device", "cpu",
                                   "--json")
    assert code == 0, err
    assert f"loaded unet from {out / 'best.safetensors'}" in err
    assert "evaluating at 32x32, the training size recorded" in err  # trained at --size 32, not the default 64
    code, file_scores, _ = run(capsys, "eval", "--weights", shapes_run, "--data", "shapes:16", "--device", "cpu",
                               "--json")  # the finished run (one epoch: its best model is its final model)
    assert json.loads(folder_scores) == json.loads(file_scores)


def test_eval_and_predict_use_the_recorded_training_size(capsys, shapes_run, tmp_path):
    config = json.loads((shapes_run / "config.json").read_text())
    assert config["preprocessing"]["size"] == [32, 32] and config["preprocessing"]["resize"] == "stretch"
    assert config["preprocessing"]["mean"] == config["mean"] and config["preprocessing"]["task"] == "segmentation"
    scores = {}
    for extra in ((), ("--size", "32"), ("--size", "64")):
        code, out, err = run(capsys, "eval", "--weights", shapes_run, "--data", "shapes:16", "--device", "cpu",
                             "--json", *extra)
        assert code == 0, err
        scores[extra] = json.loads(out)
        if not extra:
            assert "evaluating at 32x32, the training size recorded" in err
    assert scores[()] == scores[("--size", "32")] != scores[("--size", "64")]

    _shape_images(tmp_path / "images", 2, size=48)
    for name, extra in (("auto", ()), ("explicit", ("--size", "32"))):
        code, _, err = run(capsys, "predict", "--weights", shapes_run, tmp_path / "images", "--out", tmp_path / name,
                           "--device", "cpu", *extra)
        assert code == 0, err
    for image in ("img0_mask.png", "img1_mask.png"):
        auto = np.asarray(Image.open(tmp_path / "auto" / image))
        assert auto.shape == (48, 48)
        assert np.array_equal(auto, np.asarray(Image.open(tmp_path / "explicit" / image)))

    model = encdec.from_pretrained(shapes_run)
    assert model.encdec_config["preprocessing"]["size"] == [32, 32]
    image = np.asarray(Image.open(tmp_path / "images" / "img0.png"))
    labels = encdec.predict(model, image)
    assert labels.shape == (48, 48)
    assert torch.equal(labels, encdec.predict(model, image, size=32))
    assert encdec.predict(model, image, size=None).shape == (48, 48)


@pytest.mark.slow
def test_predict_through_tiles_at_the_images_own_size(capsys, shapes_run, tmp_path):
    _shape_images(tmp_path / "images", 1, size=70)
    code, _, err = run(capsys, "predict", "--weights", shapes_run, tmp_path / "images", "--out", tmp_path / "tiled",
                       "--device", "cpu", "--tile", "32", "--overlap", "0.5", "--tta")
    assert code == 0, err
    assert "training size recorded" not in err  # tiles predict at the image's own resolution
    mask = np.asarray(Image.open(tmp_path / "tiled" / "img0_mask.png"))
    model = encdec.from_pretrained(shapes_run)
    image = np.asarray(Image.open(tmp_path / "images" / "img0.png").convert("RGB"))
    expected = encdec.predict(model, image, size=None, tile=32, overlap=0.5, tta=True, device="cpu")
    assert mask.shape == (70, 70) and np.array_equal(mask, expected.numpy())
    torch.save(ref.CustomCNN(num_classes=4).state_dict(), tmp_path / "cnn.pth")
    code, _, err = run(capsys, "predict", "--model", "custom_cnn", "--weights", tmp_path / "cnn.pth",
                       tmp_path / "images", "--out", tmp_path / "x", "--tile", "32")
    assert code == 2 and "--tile and --tta apply to segmentation models" in one_error_line(err)


def test_predict_at_each_images_own_size(capsys, shapes_run, tmp_path):
    """--size native: a model trained at 32x32 predicts each image at its own size (padded to its multiple of 16,
    cropped back) instead of at the recorded training size."""
    folder = tmp_path / "images"
    _shape_images(folder, 1, size=70)
    rgb = np.asarray(Image.open(folder / "img0.png").convert("RGB"))
    Image.fromarray(rgb[:37, :53]).save(folder / "img1.png")  # 37x53: neither side a multiple of 16
    code, _, err = run(capsys, "predict", "--weights", shapes_run, folder, "--out", tmp_path / "native", "--size",
                       "native", "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    assert "training size recorded" not in err
    model = encdec.from_pretrained(shapes_run)
    for name, shape in (("img0", (70, 70)), ("img1", (37, 53))):
        mask = np.asarray(Image.open(tmp_path / "native" / f"{name}_mask.png"))
        image = np.asarray(Image.open(folder / f"{name}.png").convert("RGB"))
        assert mask.shape == shape
        assert np.array_equal(mask, encdec.predict(model, image, size=None, device="cpu", precision="fp32").numpy())
    code, _, err = run(capsys, "predict", "--weights", shapes_run, folder, "--out", tmp_path / "x", "--size", "big")
    assert code == 2 and "expected a positive number, got 'big'" in err


def test_predict_reference_checkpoint_needs_model(capsys, tmp_path):
    src = tmp_path / "cnn.pth"
    torch.save(ref.CustomCNN(num_classes=4).state_dict(), src)
    image = tmp_path / "dog.png"
    Image.fromarray(np.zeros((50, 60, 3), np.uint8)).save(image)
    code, _, err = run(capsys, "predict", "--weights", src, image, "--out", tmp_path / "o")
    assert code == 2 and "--model" in one_error_line(err)
    code, out, _ = run(capsys, "predict", "--model", "custom_cnn", "--weights", src, image, "--out", tmp_path / "o",
                       "--device", "cpu")
    assert code == 0 and "dog.png" in out


@pytest.mark.slow
def test_train_classifier_on_shapes(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--model", "custom_cnn", "--data", "shapes:16", "--epochs", "1",
                         "--out", tmp_path / "cls", *CPU)  # with pictures: the classification grid
    assert code == 0, err
    assert "val_accuracy" in out
    assert (tmp_path / "cls" / "predictions.png").is_file()


@pytest.mark.parametrize("kind", [pytest.param("voc", marks=pytest.mark.slow), "pet", "cifar10", "dogs"])
def test_train_and_eval_on_dataset_layouts(capsys, tmp_path, kind):
    if kind == "voc":
        root = trees.write_voc_tree(tmp_path / "data")
        model = ["--model", "unet", TINY]
    elif kind == "pet":
        root = trees.write_pet_tree(tmp_path / "data", per_breed=3, test_per_breed=1)
        model = ["--model", "unet_pet", TINY]
    elif kind == "cifar10":
        trees.write_cifar_batches(tmp_path / "data", per_batch=2)
        root = tmp_path / "data"
        model = ["--model", "custom_cnn"]
    else:
        root = trees.write_dog_tree(tmp_path / "data")
        model = ["--model", "custom_cnn"]
    out = tmp_path / "run"
    pictures = CPU if kind == "voc" else FAST
    code, _, err = run(capsys, "train", *model, "--data", f"{kind}:{root}", "--size", "32", "--epochs", "1",
                       "--batch-size", "4", "--out", out, *pictures)
    assert code == 0, err
    assert (out / "model.safetensors").is_file()
    assert (out / "predictions.png").is_file() == (kind == "voc")
    code, stdout, err = run(capsys, "eval", "--weights", out, "--data", f"{kind}:{root}", "--size", "32",
                            "--device", "cpu", "--json")
    assert code == 0, err
    scores = json.loads(stdout)
    assert ("miou" in scores) if kind in ("voc", "pet") else ("accuracy" in scores)
    if kind == "voc":  # the 22-output reference convention: the boundary is class 21, ignored
        assert encdec.from_pretrained(out).num_classes == 22 and scores["iou"][21] is None


@pytest.mark.slow
def test_unusable_samples_stop_training_or_are_left_out_and_listed(capsys, tmp_path):
    root = trees.write_pet_tree(tmp_path / "data", per_breed=3, test_per_breed=1)
    pet = root / "oxford-iiit-pet" if (root / "oxford-iiit-pet").is_dir() else root
    ids = [line.split()[0] for line in (pet / "annotations" / "trainval.txt").read_text().splitlines() if line]
    broken_jpeg = pet / "images" / f"{ids[0]}.jpg"
    broken_jpeg.write_bytes(broken_jpeg.read_bytes()[:40])
    rgb_mask = pet / "annotations" / "trimaps" / f"{ids[1]}.png"
    Image.open(rgb_mask).convert("RGB").save(rgb_mask)
    args = ["train", "--model", "unet_pet", TINY, "--data", f"pet:{root}", "--size", "32", "--epochs", "1",
            "--batch-size", "4", *FAST]

    code, _, err = run(capsys, *args, "--out", tmp_path / "run")
    assert code == 1
    assert "cannot be used" in err and "--skip-corrupt" in one_error_line(err)
    assert not (tmp_path / "run" / "last.pt").exists()  # stopped before the first step

    code, out, err = run(capsys, *args, "--out", tmp_path / "run", "--skip-corrupt")
    assert code == 0, err
    tail = err[err.index("left out 2 unusable samples"):]
    assert f"{broken_jpeg}:" in tail and f"{rgb_mask}: mode 'RGB' holds colours" in tail

    code, out, err = run(capsys, "eval", "--weights", tmp_path / "run", "--data", f"pet:{root}", "--split",
                         "trainval", "--device", "cpu", "--json", "--skip-corrupt")
    assert code == 0, err
    assert sorted(item["file"] for item in json.loads(out)["skipped"]) == sorted([str(broken_jpeg), str(rgb_mask)])
    code, _, err = run(capsys, "eval", "--weights", tmp_path / "run", "--data", f"pet:{root}", "--split",
                       "trainval", "--device", "cpu")
    assert code == 1 and (ids[0] in one_error_line(err) or ids[1] in one_error_line(err))
    assert "--skip-corrupt" in one_error_line(err)


@pytest.mark.slow
def test_check_data_reads_every_sample(capsys, tmp_path):
    root = trees.write_pet_tree(tmp_path / "data", per_breed=3, test_per_breed=1)
    code, _, err = run(capsys, "train", "--model", "unet_pet", TINY, "--data", f"pet:{root}", "--size", "32",
                       "--epochs", "1", "--batch-size", "4", "--out", tmp_path / "run", "--check-data", *FAST)
    assert code == 0, err
    assert re.search(r"training data: checked (\d+) of \1 samples: all readable", err)
    assert re.search(r"validation data: checked (\d+) of \1 samples: all readable", err)


def test_train_with_reference_weights_and_partial_head(capsys, tmp_path):
    trees.write_cifar_batches(tmp_path / "data", per_batch=2)
    src = tmp_path / "custom_cnn.pth"
    torch.save(ref.CustomCNN(num_classes=4).state_dict(), src)
    args = ["train", "--model", "custom_cnn", "--data", f"cifar10:{tmp_path / 'data'}", "--weights", src,
            "--epochs", "1", "--limit", "8", "--batch-size", "4", "--out", tmp_path / "run", *FAST]
    code, _, err = run(capsys, *args)
    assert code == 1 and "num_classes=4" in err  # 10 CIFAR classes, a 4-output checkpoint: strict by default
    with pytest.warns(UserWarning, match="loaded 37 of 39 entries"):
        code, _, err = run(capsys, *args, "--partial")
    assert code == 0, err
    assert "did not fit" in err


# ------------------------------------------------------------------------------------------ demo


@pytest.mark.slow
def test_demo_quick(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--quick", "--out", tmp_path / "demo", "--quiet")
    assert code == 0
    assert "before" in out and "after" in out and "identical predictions" in out
    assert "a smoke run with no quality goal" in out  # --quick says it is not the demo's test of learning
    metrics = json.loads((tmp_path / "demo" / "metrics.json").read_text())
    assert metrics["miou"] > metrics["miou_before"] and metrics["reload_identical"] is True
    for name in ("history.png", "predictions.png", "unet_shapes.safetensors", "history.json"):
        assert (tmp_path / "demo" / name).is_file(), name


def test_demo_fails_when_it_misses_its_goal(tmp_path, monkeypatch):
    from encdec import demo
    from encdec.training import History

    monkeypatch.setattr(History, "plot", lambda self, path, **kw: path)  # pictures are tested above

    config = demo.with_overrides(demo.QUICK, goal_miou=0.999, epochs=1, train_images=32)
    with pytest.raises(demo.DemoError, match="below the demo's goal"):
        demo.run_demo(tmp_path, config=config, progress=False, log=lambda line: None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_device_without_cuda_is_a_usage_error(capsys):
    code, _, err = run(capsys, "demo", "--quick", "--device", "cuda")
    assert code == 2
    assert "CUDA is not available on this machine" in one_error_line(err)


@pytest.mark.slow
def test_train_seed_repeats_the_initial_weights_too(capsys, tmp_path):
    weights = []
    for name in ("a", "b"):
        code, _, err = run(capsys, "train", "--model", "unet", TINY, "--data", "shapes:8", "--size", "32",
                           "--epochs", "1", "--batch-size", "4", "--seed", "3", "--out", tmp_path / name, *FAST)
        assert code == 0, err
        weights.append(encdec.read_state_dict(tmp_path / name / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_debug_after_the_verb_and_random_bytes_named_as_such(capsys, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    code, _, err = run(capsys, "eval", "--weights", junk, "--data", "shapes:4")
    assert code == 1 and "junk.bin" in one_error_line(err) and "--model" not in one_error_line(err)
    with pytest.raises(encdec.WeightsError):
        main(["eval", "--weights", str(junk), "--data", "shapes:4", "--debug"])


def test_a_second_train_into_the_same_out_needs_resume_or_overwrite(capsys, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--model", "unet", TINY, "--data", "shapes:8", "--size", "32", "--epochs", "1", "--batch-size",
            "4", "--out", out, *FAST]
    assert run(capsys, *args)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run(capsys, *args)
    assert code == 1 and "holds an earlier run" in one_error_line(err) and "--overwrite" in one_error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing of the earlier run lost
    (out / "notes.txt").write_text("mine")
    assert run(capsys, *args, "--overwrite")[0] == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "history.json").read_bytes() != before["history.json"]


def test_metrics_csv_matches_history_json(shapes_run):
    history = json.loads((shapes_run / "history.json").read_text())["epochs"]
    rows = (shapes_run / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert len(rows) == 1 + len(history)
    for line, record in zip(rows[1:], history):
        for key, value in zip(header, line.split(",")):
            assert float(value) == pytest.approx(record[key]), key


@pytest.mark.parametrize("loss", ["dice", "jaccard", "focal", "lovasz", "tversky", "bce", "bce_dice"])
def test_train_reaches_every_loss(capsys, tmp_path, loss):
    code, out, err = run(capsys, "train", "--model", "unet", TINY, "--data", "shapes:8", "--size", "32", "--epochs",
                         "1", "--batch-size", "4", "--loss", loss, "--out", tmp_path / loss, *FAST)
    assert code == 0, err
    assert "val_miou" in out
