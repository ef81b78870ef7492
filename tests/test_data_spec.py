"""``encdec.datasets.from_spec``: each kind on a tree in its official layout, with the preset of its split."""

from __future__ import annotations

import pytest
import torch

from encdec.datasets import (
    CIFAR10,
    DATA_KINDS,
    DataSpecError,
    DogImages,
    OxfordPetSegmentation,
    VOCSegmentation,
    from_spec,
    parse_spec,
    presets,
    take,
)
from encdec.normalization import CIFAR10_MEAN, IMAGENET_MEAN

try:
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - tests/ on sys.path instead of a package
    from fixtures import trees


def test_parse_spec_kinds_aliases_and_errors():
    assert parse_spec("pets:/x").kind == "pet" and str(parse_spec("cifar:/y").path) == "/y"
    assert parse_spec("shapes").count == 512 and parse_spec("synthetic:7").count == 7
    for bad, message in [("coco:/d", "unknown kind 'coco'"), ("voc", "give the folder"), ("shapes:0", "positive")]:
        with pytest.raises(DataSpecError, match=message):
            parse_spec(bad)


def test_voc_spec_reads_the_tree_with_the_voc_presets(tmp_path):
    voc = trees.write_voc_tree(tmp_path)
    val = from_spec(f"voc:{voc}", "val", size=32, num_classes=22)
    direct = VOCSegmentation(voc, "val", presets.voc_eval(32), boundary="class")
    image, mask = val[0]
    want_image, want_mask = direct[0]
    assert torch.equal(image, want_image) and torch.equal(mask, want_mask)
    assert val.num_classes == 22 and val.palette == "voc22" and val.mean == IMAGENET_MEAN
    assert from_spec(f"voc:{voc}", "val", size=32).ignore_index == 255  # 21 classes: the boundary is ignored
    assert len(from_spec(f"voc:{voc}", "train", size=32)) == 3


def test_pet_spec_keeps_the_reference_0_1_range_unless_normalised(tmp_path):
    pet = trees.write_pet_tree(tmp_path)
    test = from_spec(f"pet:{pet}", "test", size=32)
    assert isinstance(test, OxfordPetSegmentation) and test.mean == (0.0, 0.0, 0.0) and test.palette == "binary"
    image, _ = test[0]
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert from_spec(f"pet:{pet}", "test", size=32, normalize=True).mean == IMAGENET_MEAN


def test_cifar_validation_is_held_out_of_the_training_batches_never_the_test_batch(tmp_path):
    trees.write_cifar_batches(tmp_path / "c", per_batch=20)
    spec = f"cifar10:{tmp_path / 'c'}"
    train, val, test = from_spec(spec, "train"), from_spec(spec, "val"), from_spec(spec, "test")
    assert isinstance(test, CIFAR10) and not test.train and len(test) == 20
    assert len(train) + len(val) == 100 and 0 < len(val) < 20 and val.mean == CIFAR10_MEAN
    assert not set(train.indices) & set(val.indices) and val.dataset.train and train.dataset.train
    assert val.num_classes == 10 and val.class_names == test.class_names


def test_dogs_spec(tmp_path):
    dogs = trees.write_dog_tree(tmp_path / "d")
    train = from_spec(f"dogs:{dogs}", "train", size=32)
    assert isinstance(train, DogImages) and tuple(train[0][0].shape) == (3, 32, 32)


def test_no_default_validation_split_reads_a_test_split(tmp_path):
    pet = trees.write_pet_tree(tmp_path / "p")
    val = from_spec(f"pet:{pet}", "val", size=32)
    trainval = {line.split()[0] for line in (pet / "annotations" / "trainval.txt").read_text().splitlines()}
    assert len(val) > 0 and set(val.ids) <= trainval
    assert {k: ("val" in d.splits) for k, d in DATA_KINDS.items()} == dict.fromkeys(DATA_KINDS, True)


def test_shapes_serves_both_tasks_and_take_keeps_the_description():
    seg = from_spec("shapes:20", "train", size=32)
    cls = from_spec("shapes:20", "val", size=32, task="classification", num_classes=4)
    assert len(seg) == 20 and seg[0][1].shape == (32, 32)
    assert len(cls) == 16 and cls.num_classes == 4 and isinstance(cls[0][1], int)
    part = take(seg, 5)
    assert len(part) == 5 and (part.num_classes, part.palette, part.mean) == (3, "shapes", seg.mean)


def test_errors_name_the_layout_the_split_or_the_task(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*JPEGImages"):
        from_spec(f"voc:{tmp_path / 'nowhere'}", "val")
    with pytest.raises(FileNotFoundError, match="ImageSets/Segmentation"):
        from_spec(f"voc:{tmp_path}", "val")
    with pytest.raises(DataSpecError, match="split 'bogus' is not a split of voc; choose from train, val, trainval"):
        from_spec(f"voc:{tmp_path}", "bogus")
    with pytest.raises(DataSpecError, match="cifar10 is a classification dataset"):
        from_spec(f"cifar10:{tmp_path}", "val", task="segmentation")
    assert DATA_KINDS["pet"].eval_split == "val"
