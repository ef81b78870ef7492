"""Every example runs end to end in ``--smoke`` mode on a generated tree of its dataset's on-disk layout."""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from encdec.training import recipes

pytestmark = pytest.mark.slow  # part of make test; make check leaves it out

try:  # tests/ as a package, or tests/ on sys.path
    from tests import reference as ref
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref
    from fixtures import trees

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finite(x) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def test_every_example_is_tested():
    tested = {"quickstart", "voc_unet", "pets_resnet34_unet", "cifar10_classifiers", "dogs_cnn_vs_fcn"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_quickstart(tmp_path, capsys):
    results = load("quickstart").main(["--smoke", "--out", str(tmp_path)])
    assert 0.0 <= results["miou"] <= 1.0
    assert "mIoU" in capsys.readouterr().out
    assert (tmp_path / "unet.safetensors").is_file() and (tmp_path / "history.json").is_file()


def test_examples_have_help(capsys):
    for path in sorted(EXAMPLES.glob("*.py")):
        with pytest.raises(SystemExit) as exit_:
            load(path.stem).main(["--help"])
        assert exit_.value.code == 0 and "--smoke" in capsys.readouterr().out, path.name
    # and one really runs as a script (the __main__ guard, imports from a plain interpreter)
    done = subprocess.run([sys.executable, str(EXAMPLES / "cifar10_classifiers.py"), "--help"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "--vgg-weights" in done.stdout, done.stderr


def test_voc_unet(tmp_path):
    root = trees.write_voc_tree(tmp_path / "data", size=(40, 48))
    checkpoint = tmp_path / "UNet_resnet_course.pth"  # a reference-layout checkpoint, including the unused layer
    torch.save(ref.UNetWithResnet50Encoder().state_dict(), checkpoint)
    # the 31M-parameter U-Net runs the same steps; the smoke test keeps to the lighter model with a checkpoint
    results = load("voc_unet").main(["--data", str(root), "--smoke", "--out", str(tmp_path / "out"),
                                     "--resnet-weights", str(checkpoint), "--device", "cpu",
                                     "--models", "resnet50_unet"])
    assert set(results) == {"resnet50_unet"}
    assert all(finite(r["miou_after"]) for r in results.values())
    for name in results:
        assert (tmp_path / "out" / name / "predictions.png").is_file()
        assert (tmp_path / "out" / name / "model.safetensors").is_file()


def test_pets_resnet34_unet(tmp_path):
    root = trees.write_pet_tree(tmp_path / "data")
    results = load("pets_resnet34_unet").main(["--data", str(root), "--smoke", "--out", str(tmp_path / "out"),
                                               "--device", "cpu"])
    assert 0.0 <= results["dice_after"] <= 1.0
    assert (tmp_path / "out" / "predictions.png").is_file()


def test_cifar10_classifiers(tmp_path):
    trees.write_cifar_batches(tmp_path / "data", per_batch=4)
    checkpoint = tmp_path / "vgg16_epoch250.ckpt"
    torch.save({"net": ref.VGG16Cifar().state_dict(), "acc": 85.0, "epoch": 250}, checkpoint)  # a training container
    results = load("cifar10_classifiers").main(["--data", str(tmp_path / "data"), "--smoke", "--device", "cpu",
                                                "--vgg-weights", str(checkpoint), "--out", str(tmp_path / "out"),
                                                "--models", "vgg16_cifar"])
    assert set(results) == {"vgg16_cifar"}
    assert all(0.0 <= r["accuracy_after"] <= 1.0 for r in results.values())


def test_dogs_cnn_vs_fcn(tmp_path):
    root = trees.write_dog_tree(tmp_path / "Images")
    results = load("dogs_cnn_vs_fcn").main(["--data", str(root), "--smoke", "--device", "cpu",
                                            "--out", str(tmp_path / "out")])
    assert set(results) == {"custom_cnn", "resfcn18", "resnet18_classifier"}
    assert all(0.0 <= r["val_accuracy"] <= 1.0 for r in results.values())


@pytest.mark.parametrize("name", ["voc_unet", "pets_resnet34_unet", "cifar10_classifiers", "dogs_cnn_vs_fcn"])
def test_examples_need_data(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        load(name).main([])
    assert exit_.value.code == 2 and "--data" in capsys.readouterr().err


@pytest.mark.parametrize("example, recipe, kind", [
    ("pets_resnet34_unet", "pet_unet_course", "pet"), ("voc_unet", "voc_unet_course", "voc"),
    ("cifar10_classifiers", "cifar_vgg16_course", "cifar10"), ("dogs_cnn_vs_fcn", "dogs_cnn_course", "dogs"),
])
def test_examples_run_their_reports_recipes(tmp_path, example, recipe, kind):
    if kind == "pet":
        root = trees.write_pet_tree(tmp_path / "data")
    elif kind == "voc":
        root = trees.write_voc_tree(tmp_path / "data", splits={"train": [f"2007_{i:06d}" for i in range(4)],
                                                               "val": ["2009_000001", "2009_000002"]})
    elif kind == "cifar10":
        root = tmp_path / "data"
        trees.write_cifar_batches(root, per_batch=20)
    else:
        root = trees.write_dog_tree(tmp_path / "data")
    load(example).main(["--data", str(root), "--out", str(tmp_path / "run"), "--recipe", recipe, "--smoke"])
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["epochs"]) == 1 and history["monitor"] == recipes.get(recipe).monitor


def test_no_example_validates_on_a_test_split():
    """Every ``fit(model, train, val, ...)`` in the examples gets a validation loader that is not the test one."""
    for path in EXAMPLES.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "fit" and len(node.args) >= 3:
                val = ast.unparse(node.args[2])
                assert "test" not in val.lower(), f"{path.name}: fit validates on {val}"
