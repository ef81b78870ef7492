"""``encdec train / eval / predict --data folder:PATH``: a run on your own images speaks of your classes, in your
colours, and refuses or leaves out the files a folder cannot use, naming them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from encdec.cli import main
from encdec.datasets import VOC_CLASSES

try:  # tests/ as a package, or tests/ on sys.path
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fixtures import trees

TINY = "--arg=widths=[4,8,16,32,64]"
CPU = ("--device", "cpu", "--precision", "fp32", "--workers", "0")
TRAIN = ("train", "--model", "unet", TINY, "--epochs", "1", "--size", "32", "--batch-size", "4", "--quiet", *CPU)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _voc_names_in(text: str) -> list:
    return [name for name in VOC_CLASSES if re.search(rf"\b{name}\b", text)]


def test_train_eval_predict_on_a_folder_use_its_class_names_and_colours(capsys, tmp_path):
    trees.write_folder_tree(tmp_path / "plants", n=6, masks="rgb")
    data, out = f"folder:{tmp_path / 'plants'}", tmp_path / "run"
    code, stdout, err = run(capsys, *TRAIN, "--data", data, "--out", out)
    assert code == 0, err
    printed = stdout + err
    assert "classes (classes.json): soil, leaf, stem" in err
    assert "5 training / 1 validation images" in err  # a seeded 20% held out
    config = json.loads((out / "config.json").read_text())
    assert config["class_names"] == list(trees.FOLDER_CLASSES)
    assert config["preprocessing"]["palette"] == [list(c) for c in trees.FOLDER_COLOURS]
    assert config["preprocessing"]["split"] == {"layout": "images/ and masks/", "val_fraction": 0.2, "seed": 0}
    assert (out / "predictions.png").is_file()

    code, stdout, err = run(capsys, "eval", "--weights", out, "--data", data, "--device", "cpu")
    assert code == 0, err
    printed += stdout + err
    rows = [line.split()[0] for line in stdout.splitlines()[-3:]]
    assert rows == list(trees.FOLDER_CLASSES)  # the per-class table, by the user's names

    code, stdout, err = run(capsys, "predict", "--weights", out, tmp_path / "plants" / "images", "--out",
                            tmp_path / "preds", "--device", "cpu", "--precision", "fp32")
    assert code == 0, err
    printed += stdout + err
    shares = re.findall(r"\(([^()]*%)\)$", stdout, flags=re.M)
    assert len(shares) == 6
    assert all(part.rsplit(" ", 1)[0] in trees.FOLDER_CLASSES for line in shares for part in line.split(", "))
    mask = Image.open(tmp_path / "preds" / "plant0_mask.png")
    assert mask.mode == "P" and mask.getpalette()[:9] == [v for c in trees.FOLDER_COLOURS for v in c]
    assert _voc_names_in(printed) == []

    trees.write_folder_tree(tmp_path / "binary", n=3, masks="binary", classes="txt")
    code, _, err = run(capsys, "eval", "--weights", out, "--data", f"folder:{tmp_path / 'binary'}", "--device", "cpu")
    assert code == 1 and "unet has 3 outputs but --data folder has 2 classes (soil, leaf)" in err


def test_num_classes_that_do_not_match_the_folder_are_refused_by_name(capsys, tmp_path):
    trees.write_folder_tree(tmp_path / "plants", n=4, classes="txt")
    code, _, err = run(capsys, *TRAIN, "--data", f"folder:{tmp_path / 'plants'}", "--num-classes", "5",
                       "--out", tmp_path / "run", "--no-plots")
    assert code == 2
    assert "--num-classes 5 does not match the 3 classes of --data folder (soil, leaf, stem)" in err


def test_discovered_classes_are_said_on_the_command_line(capsys, tmp_path):
    trees.write_folder_tree(tmp_path / "plants", n=4, masks="binary", classes=None)
    code, _, err = run(capsys, *TRAIN, "--data", f"folder:{tmp_path / 'plants'}", "--out", tmp_path / "run",
                       "--no-plots", "--check-data")
    assert code == 0, err
    assert ("classes (discovered from the masks): background, foreground; write classes.txt beside the folders "
            "(one name per line) to name them") in err
    assert "training data: checked 3 of 3 samples: all readable" in err


@pytest.fixture
def junk(tmp_path):
    root = tmp_path / "plants"
    trees.write_folder_tree(root, n=8, masks="rgb")
    (root / "images" / "plant0.jpg").unlink()  # a mask without its image
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(root / "masks" / "plant1.png")  # another size
    colours = np.asarray(Image.open(root / "masks" / "plant2.png")).copy()
    colours[0, 0] = (9, 9, 9)  # a colour that is no class
    Image.fromarray(colours).save(root / "masks" / "plant2.png")
    return root


def test_unpairable_files_are_refused_naming_each(capsys, tmp_path, junk):
    code, _, err = run(capsys, *TRAIN, "--data", f"folder:{junk}", "--out", tmp_path / "run", "--no-plots")
    assert code == 1
    assert f"{junk / 'masks' / 'plant0.png'}: has no image plant0.*" in err
    assert f"{junk / 'masks' / 'plant1.png'}: is 10x10 (width x height), its image plant1.jpg 24x20" in err


def test_skip_corrupt_leaves_out_and_lists_every_unusable_file(capsys, tmp_path, junk):
    code, stdout, err = run(capsys, *TRAIN, "--data", f"folder:{junk}", "--out", tmp_path / "run", "--no-plots",
                            "--skip-corrupt")
    assert code == 0, err
    listed = err[err.index("left out 3 unusable samples (--skip-corrupt):"):]
    assert f"{junk / 'masks' / 'plant0.png'}: has no image" in listed
    assert f"{junk / 'masks' / 'plant1.png'}: is 10x10" in listed
    assert f"{junk / 'masks' / 'plant2.png'}: RGB mask colours (9, 9, 9)" in listed
    assert listed.count("plant0.png") == 1  # named by both splits' checks, listed once


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guides" / "own-images.md"


@pytest.mark.slow
def test_the_guide_makes_its_tree_and_its_commands_run_as_written(capsys, tmp_path, monkeypatch):
    try:
        from tests.fixtures import stand_ins
    except ImportError:  # pragma: no cover
        from fixtures import stand_ins
    text = GUIDE.read_text(encoding="utf-8")
    make_tree = re.search(r"^```python\n(.*?)^```", text, flags=re.M | re.S).group(1)
    commands = [line.split("  #")[0].split() for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.M | re.S)
                for line in block.splitlines() if line.startswith("encdec ")]
    assert [c[1] for c in commands] == ["train", "eval", "predict", "train", "train"]
    monkeypatch.chdir(tmp_path)
    exec(compile(make_tree, str(GUIDE), "exec"), {})  # the page's own stand-in, as a reader runs it
    for command in commands:
        stand_ins.write_named(" ".join(command), tmp_path)  # resnet18-f37072fd.pth
        code, stdout, err = run(capsys, *command[1:])
        assert code == 0, f"{' '.join(command)}\n{err[-2000:]}"
        assert [n for n in _voc_names_in(stdout + err) if n != "background"] == []  # the guide's classes have it
        if command[1] == "eval":
            assert [line.split()[0] for line in stdout.splitlines()[-3:]] == ["background", "leaf", "spot"]
    assert len(list((tmp_path / "runs" / "leaves" / "masks").glob("leaf*_mask.png"))) == 16
