"""``encdec.datasets.SegmentationFolder`` and ``--data folder:PATH``: hand-built trees of images and masks in each
layout and mask format, the classes named or discovered, the seeded split, and the junk a real folder holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from encdec.datasets import (
    VOC_CLASSES,
    CorruptImageError,
    FolderError,
    LabelError,
    SegmentationFolder,
    from_spec,
    parse_spec,
)
from encdec.datasets.check import check_dataset

try:  # tests/ as a package, or tests/ on sys.path
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - depends on how pytest was started
    from fixtures import trees


def _root(tmp_path: Path, layout: str) -> Path:
    return tmp_path / "pairs.txt" if layout == "list" else tmp_path


def _read_all(dataset: SegmentationFolder) -> dict:
    """``{name: mask}`` of every sample, the name being the image file's stem."""
    out = {}
    for index, (image_path, _) in enumerate(dataset.samples):
        image, mask = dataset[index]
        assert image.dtype == torch.uint8 and image.shape[0] == 3 and image.shape[1:] == mask.shape
        out[image_path.stem] = mask.numpy()
    return out


@pytest.mark.parametrize("layout", ["images", "split", "list"])
def test_each_layout_pairs_every_image_with_its_mask(tmp_path, layout):
    written = trees.write_folder_tree(tmp_path, n=6, layout=layout)
    dataset = SegmentationFolder(_root(tmp_path, layout), "all")
    read = _read_all(dataset)
    assert sorted(read) == sorted(written)
    for name, labels in written.items():
        assert np.array_equal(read[name], labels), name
    assert dataset.class_names == list(trees.FOLDER_CLASSES) and dataset.classes_source == "classes.json"


def test_given_train_and_val_folders_are_the_split(tmp_path):
    trees.write_folder_tree(tmp_path, n=6, layout="split")
    train, val = SegmentationFolder(tmp_path, "train"), SegmentationFolder(tmp_path, "val")
    assert sorted(p.stem for p, _ in train.samples) == [f"plant{i}" for i in range(4)]
    assert sorted(p.stem for p, _ in val.samples) == ["plant4", "plant5"]
    assert train.data_split == {"layout": "train/ and val/ folders"}


@pytest.mark.parametrize("masks", ["palette", "gray", "binary", "rgb"])
def test_each_mask_format_reads_the_written_labels(tmp_path, masks):
    written = trees.write_folder_tree(tmp_path, n=3, masks=masks)
    dataset = SegmentationFolder(tmp_path, "all")
    read = _read_all(dataset)
    for name, labels in written.items():
        assert np.array_equal(read[name], labels), name
    assert dataset.num_classes == (2 if masks == "binary" else 3)
    if masks == "binary":  # the masks hold 0 and 255
        assert set(np.unique(np.asarray(Image.open(tmp_path / "masks" / "plant0.png")))) == {0, 255}


def test_classes_json_names_colours_and_ignore_label(tmp_path):
    written = trees.write_folder_tree(tmp_path, n=2, masks="rgb", classes=None)
    (tmp_path / "classes.json").write_text(json.dumps({
        "names": ["soil", "leaf", "stem"], "colors": [list(c) for c in trees.FOLDER_COLOURS],
        "ignore_index": 255, "ignore_color": [255, 255, 255]}))
    mask = np.asarray(Image.open(tmp_path / "masks" / "plant0.png")).copy()
    mask[0, :5] = (255, 255, 255)  # unlabelled pixels
    Image.fromarray(mask).save(tmp_path / "masks" / "plant0.png")
    dataset = SegmentationFolder(tmp_path, "all")
    assert dataset.colors == [list(c) for c in trees.FOLDER_COLOURS] and dataset.palette == dataset.colors
    assert dataset.ignore_index == 255
    read = _read_all(dataset)
    expected = written["plant0"].astype(np.int64)
    expected[0, :5] = 255
    assert np.array_equal(read["plant0"], expected)


def test_classes_txt_and_a_plain_json_list(tmp_path):
    trees.write_folder_tree(tmp_path, n=2, classes="txt")
    assert SegmentationFolder(tmp_path, "all").class_names == ["soil", "leaf", "stem"]
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "classes.json").write_text('["dirt", "green", "brown"]')
    dataset = SegmentationFolder(tmp_path, "all")
    assert dataset.class_names == ["dirt", "green", "brown"] and dataset.classes_source == "classes.json"
    assert dataset.colors == [[0, 0, 0], [31, 119, 180], [255, 127, 14]]  # black, then tab10's first colours


def test_classes_discovered_from_the_masks_are_said_and_gaps_are_closed(tmp_path):
    written = trees.write_folder_tree(tmp_path, n=3, masks="gray", classes=None)
    for name, labels in written.items():  # store 0, 3, 7 instead of 0, 1, 2
        Image.fromarray(np.array([0, 3, 7], dtype=np.uint8)[labels]).save(tmp_path / "masks" / f"{name}.png")
    with pytest.warns(UserWarning, match=r"no classes.json or classes.txt: 3 classes discovered from the values of "
                                         r"3 masks: 0, 3, 7 \(stored values 0, 3, 7 read as labels 0-2\)"):
        dataset = SegmentationFolder(tmp_path, "all")
    assert dataset.class_names == ["0", "3", "7"] and dataset.classes_source == "discovered from the masks"
    read = _read_all(dataset)
    for name, labels in written.items():
        assert np.array_equal(read[name], labels), name


def test_binary_masks_without_a_classes_file_are_background_and_foreground(tmp_path):
    written = trees.write_folder_tree(tmp_path, n=3, masks="binary", classes=None)
    with pytest.warns(UserWarning, match="discovered"):
        dataset = SegmentationFolder(tmp_path, "all")
    assert dataset.class_names == ["background", "foreground"]
    assert np.array_equal(_read_all(dataset)["plant1"], written["plant1"])


@pytest.mark.parametrize("document, message", [
    ({"names": ["a", "b"], "colours": [[0, 0, 0], [1, 1, 1]]}, r"unknown entries \['colours'\]"),
    ({"names": ["a", "b"], "colors": [[0, 0, 0]]}, "'colors' must list one"),
    ({"names": ["a", "a", "b"]}, r"class names \['a'\] appear more than once"),
    ({"names": ["a", "b"], "colors": [[0, 0, 0], [0, 0, 300]]}, r"colors\[1\] \(b\)"),
    ({"names": ["a", "b"], "ignore_index": 1}, "'ignore_index' must be a whole number from 2"),
    (["only"], "1 class names"),
])
def test_a_classes_json_that_does_not_parse_is_refused_by_entry(tmp_path, document, message):
    trees.write_folder_tree(tmp_path, n=2, classes=None)
    (tmp_path / "classes.json").write_text(json.dumps(document))
    with pytest.raises(FolderError, match=message) as caught:
        SegmentationFolder(tmp_path)
    assert "classes.json" in str(caught.value)


def test_both_classes_files_are_refused(tmp_path):
    trees.write_folder_tree(tmp_path, n=2, classes="json")
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    with pytest.raises(FolderError, match="holds both classes.json and classes.txt"):
        SegmentationFolder(tmp_path)


def test_the_held_out_split_is_fixed_by_its_seed(tmp_path):
    trees.write_folder_tree(tmp_path, n=20, size=(16, 16))

    def names(split, **kwargs):
        return sorted(p.stem for p, _ in SegmentationFolder(tmp_path, split, **kwargs).samples)

    val = names("val", seed=3)
    assert len(val) == 4 and names("val", seed=3) == val  # round(20 * 0.2), the same every time
    assert set(names("train", seed=3)) == {f"plant{i}" for i in range(20)} - set(val)
    assert names("val", seed=4) != val
    assert len(names("val", val_fraction=0.5)) == 10
    assert SegmentationFolder(tmp_path, "val", seed=3).data_split == {
        "layout": "images/ and masks/", "val_fraction": 0.2, "seed": 3}


def _junk_tree(tmp_path: Path) -> Path:
    trees.write_folder_tree(tmp_path, n=5)
    (tmp_path / "images" / "plant0.jpg").unlink()  # a mask without its image
    (tmp_path / "masks" / "plant1.png").unlink()  # an image without its mask
    Image.fromarray(np.zeros((10, 10), dtype=np.uint8)).save(tmp_path / "masks" / "plant2.png")  # another size
    return tmp_path


def test_junk_is_refused_naming_every_file(tmp_path):
    root = _junk_tree(tmp_path)
    with pytest.raises(FolderError) as caught:
        SegmentationFolder(root)
    message = str(caught.value)
    assert message.startswith(f"3 files under {root} cannot be used:")
    assert f"{root / 'masks' / 'plant0.png'}: has no image plant0.* in {root / 'images'}" in message
    assert f"{root / 'images' / 'plant1.jpg'}: has no mask plant1.* in {root / 'masks'}" in message
    assert (f"{root / 'masks' / 'plant2.png'}: is 10x10 (width x height), its image plant2.jpg 24x20; they must "
            "match") in message
    assert "skip_corrupt=True" in message


def test_junk_is_left_out_and_listed_with_skip_corrupt(tmp_path):
    root = _junk_tree(tmp_path)
    with pytest.warns(RuntimeWarning, match="leaving out 3 files"):
        dataset = SegmentationFolder(root, "all", skip_corrupt=True)
    assert sorted(p.stem for p, _ in dataset.samples) == ["plant3", "plant4"]
    assert sorted(Path(file).name for file, _ in dataset.left_out) == ["plant0.png", "plant1.jpg", "plant2.png"]


def test_unknown_colours_and_values_above_the_classes_are_refused_by_file(tmp_path):
    trees.write_folder_tree(tmp_path / "rgb", n=3, masks="rgb")
    bad = np.asarray(Image.open(tmp_path / "rgb" / "masks" / "plant1.png")).copy()
    bad[2, 2] = (1, 2, 3)
    Image.fromarray(bad).save(tmp_path / "rgb" / "masks" / "plant1.png")
    dataset = SegmentationFolder(tmp_path / "rgb", "all")
    index = [p.stem for p, _ in dataset.samples].index("plant1")
    with pytest.raises(CorruptImageError, match=r"plant1.png.*RGB mask colours \(1, 2, 3\)"):
        dataset[index]
    report = check_dataset(dataset)
    assert [Path(p.file).name for p in report.problems] == ["plant1.png"]

    trees.write_folder_tree(tmp_path / "gray", n=3, masks="gray")
    Image.fromarray(np.full((20, 24), 5, dtype=np.uint8)).save(tmp_path / "gray" / "masks" / "plant2.png")
    dataset = SegmentationFolder(tmp_path / "gray", "all")
    with pytest.raises(LabelError, match=r"plant2.png holds values \[5\] outside the valid labels 0 \(soil\)"):
        dataset[[p.stem for p, _ in dataset.samples].index("plant2")]


def test_rgb_masks_without_colours_and_a_missing_layout_say_what_to_write(tmp_path):
    trees.write_folder_tree(tmp_path / "rgb", n=2, masks="rgb", classes="txt")
    dataset = SegmentationFolder(tmp_path / "rgb", "all")
    with pytest.raises(CorruptImageError, match="holds colours, not labels"):
        dataset[0]
    trees.write_folder_tree(tmp_path / "rgb2", n=2, masks="rgb", classes=None)
    with pytest.raises(FolderError, match="is an RGB image; masks saved as colours need a colour table"):
        SegmentationFolder(tmp_path / "rgb2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds neither images/ and masks/ nor train/ and val/"):
        SegmentationFolder(tmp_path / "empty")


def test_folder_spec_uses_the_segmentation_presets_and_the_classes_colours(tmp_path):
    trees.write_folder_tree(tmp_path, n=5, masks="rgb")
    assert parse_spec(f"folder:{tmp_path}").kind == "folder"
    val = from_spec(f"folder:{tmp_path}", "val", size=32)
    image, mask = val[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32 and mask.shape == (32, 32)
    assert val.palette == [list(c) for c in trees.FOLDER_COLOURS] and len(val) == 1
    assert not set(val.class_names) & set(VOC_CLASSES)


def _format_zoo(folder: Path) -> dict:
    """Images in the formats photos come in, each with the RGB array a reader must return (restated here)."""
    rng = np.random.default_rng(5)
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    deep = rng.integers(0, 65536, (12, 16), dtype=np.uint16)  # 16-bit gray: the high byte, not clipped to white
    Image.fromarray(deep).save(folder / "deep.png")
    expected["deep"] = np.repeat((deep >> 8).astype(np.uint8)[..., None], 3, axis=2)
    indices = rng.integers(0, 4, (12, 16), dtype=np.uint8)  # palette: the colours of the indices
    colours = np.array([[10, 20, 30], [200, 0, 0], [0, 200, 0], [0, 0, 200]], dtype=np.uint8)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette(colours.ravel().tolist())
    palette.save(folder / "palette.png")
    expected["palette"] = colours[indices]
    stored = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)  # EXIF orientation 6: shown turned 90 degrees clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(folder / "sideways.png", exif=exif.tobytes())
    expected["sideways"] = np.rot90(stored, k=-1)
    alpha = rng.integers(0, 256, (12, 16, 4), dtype=np.uint8)  # RGBA: the colour, without the alpha
    Image.fromarray(alpha, mode="RGBA").save(folder / "alpha.png")
    expected["alpha"] = alpha[..., :3]
    return expected


def test_both_folder_readers_read_16_bit_palette_rotated_and_alpha_images_alike(tmp_path):
    from encdec.datasets import DogImages

    expected = _format_zoo(tmp_path / "classes" / "plant")
    (tmp_path / "classes" / "other").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "classes" / "other" / "x.png")
    dogs = DogImages(tmp_path / "classes", "all")
    by_class_folder = {p.stem: dogs[i][0].permute(1, 2, 0).numpy() for i, (p, _) in enumerate(dogs.samples)}

    (tmp_path / "seg" / "masks").mkdir(parents=True)
    (tmp_path / "classes" / "plant").rename(tmp_path / "seg" / "images")
    for name, rgb in expected.items():  # masks drawn on the upright picture
        Image.fromarray(np.zeros(rgb.shape[:2], dtype=np.uint8)).save(tmp_path / "seg" / "masks" / f"{name}.png")
    (tmp_path / "seg" / "classes.txt").write_text("a\nb\n")
    folder = SegmentationFolder(tmp_path / "seg", "all")
    by_pairs = {p.stem: folder[i][0].permute(1, 2, 0).numpy() for i, (p, _) in enumerate(folder.samples)}
    for name, rgb in expected.items():
        assert np.array_equal(by_class_folder[name], rgb), name
        assert np.array_equal(by_pairs[name], rgb), name


def test_cmyk_jpegs_and_16_bit_masks(tmp_path):
    trees.write_folder_tree(tmp_path, n=2, masks="gray", classes="txt")
    rgb = np.asarray(Image.open(tmp_path / "images" / "plant0.jpg"))
    Image.open(tmp_path / "images" / "plant0.jpg").convert("CMYK").save(tmp_path / "images" / "plant0.jpg")
    written = np.asarray(Image.open(tmp_path / "masks" / "plant1.png"))
    Image.fromarray(written.astype(np.uint16)).save(tmp_path / "masks" / "plant1.png")
    assert Image.open(tmp_path / "masks" / "plant1.png").mode.startswith("I")
    dataset = SegmentationFolder(tmp_path, "all")
    image, _ = dataset[0]
    assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - rgb.astype(int)).mean() < 8  # JPEG's loss only
    assert np.array_equal(dataset[1][1].numpy(), written)


def test_folder_spec_takes_a_list_file_and_refuses_a_missing_path(tmp_path):
    trees.write_folder_tree(tmp_path, n=5, layout="list")
    train = from_spec(f"folder:{tmp_path / 'pairs.txt'}", "train", size=16)
    assert len(train) == 4 and train.data_split["layout"] == "the list file pairs.txt"
    with pytest.raises(FileNotFoundError, match="folder:PATH expects a folder with images/ and masks/"):
        from_spec(f"folder:{tmp_path / 'nothing'}", "train")
    (tmp_path / "pairs.txt").write_text("data/plant0.jpg\n")
    with pytest.raises(FolderError, match=r"pairs.txt, line 1: expected IMAGE MASK"):
        from_spec(f"folder:{tmp_path / 'pairs.txt'}", "train")
