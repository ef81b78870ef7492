"""encdec.datasets read fixture trees in the official layouts, agree with torchvision's readers, fail clearly."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from encdec import datasets as D
from encdec.datasets import presets

try:
    from tests.fixtures import trees
except ImportError:  # pragma: no cover - tests/ on sys.path instead of a package
    from fixtures import trees


def _pil_rgb(img) -> np.ndarray:
    return np.asarray(img.convert("RGB")).transpose(2, 0, 1)


# ---------------------------------------------------------------------------------------------------------------
# VOC
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voc_root(tmp_path_factory) -> Path:
    return trees.write_voc_tree(tmp_path_factory.mktemp("voc"))


def test_voc_matches_torchvision_sample_by_sample(voc_root):
    ours = D.VOCSegmentation(voc_root, "train")
    theirs = torchvision.datasets.VOCSegmentation(voc_root.parent.parent, year="2012", image_set="train")
    assert len(ours) == len(theirs) == 3
    for (image, mask), (pil_image, pil_mask) in zip(ours, theirs):
        assert image.dtype == torch.uint8 and mask.dtype == torch.int64
        np.testing.assert_array_equal(image.numpy(), _pil_rgb(pil_image))
        np.testing.assert_array_equal(mask.numpy(), np.asarray(pil_mask))
    assert 255 in torch.cat([m.flatten() for _, m in ours]).tolist()  # borders kept as the ignore label
    assert (ours.num_classes, ours.ignore_index, ours.class_names[15]) == (21, 255, "person")


@pytest.mark.parametrize("level", ["VOC2012", "VOCdevkit", "parent"])
def test_voc_accepts_the_voc2012_folder_the_devkit_or_its_parent(voc_root, level):
    root = {"VOC2012": voc_root, "VOCdevkit": voc_root.parent, "parent": voc_root.parent.parent}[level]
    ds = D.VOCSegmentation(root, "val")
    assert ds.root == voc_root and ds.ids == ["2009_000012"]


def test_voc_boundary_as_class_21(voc_root):
    raw = D.VOCSegmentation(voc_root, "train")
    ds = D.VOCSegmentation(voc_root, "train", boundary="class")
    assert (ds.num_classes, ds.ignore_index, ds.class_names[-1]) == (22, 21, "boundary")
    for (_, m_raw), (_, m) in zip(raw, ds):
        assert torch.equal(m, torch.where(m_raw == 255, 21, m_raw))


def test_voc_presets_resize_normalise_and_keep_labels(voc_root):
    ds = D.VOCSegmentation(voc_root, "train", transforms=presets.voc_train())
    raw = D.VOCSegmentation(voc_root, "train")
    torch.manual_seed(0)
    for (image, mask), (_, raw_mask) in zip(ds, raw):
        assert image.shape == (3, 256, 256) and image.dtype == torch.float32
        assert mask.shape == (256, 256) and mask.dtype == torch.int64
        assert set(mask.unique().tolist()) <= set(raw_mask.unique().tolist())
        assert not isinstance(mask, tv_tensors.Mask)  # plain tensors reach the DataLoader
    image, _ = D.VOCSegmentation(voc_root, "val", transforms=presets.voc_eval())[0]
    assert -3.0 < float(image.mean()) < 3.0


def _copy_voc(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_voc_out_of_range_label_names_file_and_values(voc_root, tmp_path):
    voc = _copy_voc(voc_root, tmp_path / "VOC2012")
    bad = voc / "SegmentationClass" / "2007_000039.png"
    arr = np.array(Image.open(bad))
    arr[0, :3] = [40, 41, 40]
    png = Image.fromarray(arr, mode="P")
    png.putpalette(trees.VOC_PALETTE)
    png.save(bad)
    ds = D.VOCSegmentation(voc, "train")
    ds[0]
    with pytest.raises(D.LabelError, match=r"2007_000039\.png holds values \[40, 41\].*\[0, 21\) and 255"):
        ds[1]


def test_voc_missing_image_empty_split_unknown_split_and_bad_root(voc_root, tmp_path):
    voc = _copy_voc(voc_root, tmp_path / "VOC2012")
    (voc / "JPEGImages" / "2008_000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"image for id '2008_000001' listed in .*train\.txt not found"):
        D.VOCSegmentation(voc, "train")
    (voc / "ImageSets" / "Segmentation" / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match=r"empty\.txt lists no image ids"):
        D.VOCSegmentation(voc, "empty")
    with pytest.raises(FileNotFoundError, match=r"test\.txt.*available splits: \['empty', 'train', 'val'\]"):
        D.VOCSegmentation(voc, "test")
    with pytest.raises(FileNotFoundError, match="no Pascal VOC 2012 folder found"):
        D.VOCSegmentation(tmp_path / "nowhere", "train")
    with pytest.raises(ValueError, match="boundary"):
        D.VOCSegmentation(voc, "val", boundary="drop")


def test_corrupt_png_and_jpeg_name_the_file_or_are_skipped_and_counted(voc_root, tmp_path):
    voc = _copy_voc(voc_root, tmp_path / "VOC2012")
    (voc / "SegmentationClass" / "2007_000039.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    jpg = voc / "JPEGImages" / "2008_000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:40])  # truncated
    ds = D.VOCSegmentation(voc, "train")
    with pytest.raises(D.CorruptImageError, match=r"2007_000039\.png.*skip_corrupt=True"):
        ds[1]
    with pytest.raises(D.CorruptImageError, match=r"2008_000001\.jpg"):
        ds[2]
    skipping = D.VOCSegmentation(voc, "train", skip_corrupt=True)
    with pytest.warns(RuntimeWarning, match="skipping unreadable file"):
        items = [skipping[i] for i in range(len(skipping))]
    assert all(torch.equal(item[1], items[0][1]) for item in items)  # both bad ones replaced by a good one
    assert skipping.num_skipped == 2 and {Path(p).name for p in skipping.skipped} == {
        "2007_000039.png",
        "2008_000001.jpg",
    }


def test_rgb_masks_are_read_through_the_voc_colours_or_refused(voc_root, tmp_path):
    voc = _copy_voc(voc_root, tmp_path / "VOC2012")
    path = voc / "SegmentationClass" / "2009_000012.png"
    expected = D.VOCSegmentation(voc, "val")[0][1]
    Image.open(path).convert("RGB").save(path)  # colours from the fixture's own palette, boundary included
    image, mask = D.VOCSegmentation(voc, "val")[0]
    assert torch.equal(mask, expected) and bool((mask == 255).any())
    with pytest.raises(D.CorruptImageError, match=r"2009_000012\.png.*holds colours, not labels"):
        D.VOCSegmentation(voc, "val", rgb_masks="refuse")[0]
    with pytest.raises(ValueError, match="rgb_masks must be 'palette' or 'refuse', got 'auto'"):
        D.VOCSegmentation(voc, "val", rgb_masks="auto")

    rgb = np.asarray(Image.open(path)).copy()
    rgb[0, 0] = (1, 2, 3)
    rgb[1, 1] = (250, 0, 0)
    Image.fromarray(rgb).save(path)
    with pytest.raises(D.CorruptImageError, match=r"2009_000012\.png.*colours \(1, 2, 3\), \(250, 0, 0\) are not "):
        D.VOCSegmentation(voc, "val")[0]
    skipping = D.VOCSegmentation(voc, "val", skip_corrupt=True)
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="every sample is unreadable"):
        skipping[0]  # the val split holds this one image only
    assert [str(p) for p in skipping.skipped] == [str(path)]


# ---------------------------------------------------------------------------------------------------------------
# Oxford-IIIT Pet
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pet_root(tmp_path_factory) -> Path:
    return trees.write_pet_tree(tmp_path_factory.mktemp("pets"))


@pytest.mark.parametrize("split", ["trainval", "test"])
def test_pets_match_torchvision_and_map_trimaps(pet_root, split):
    theirs = torchvision.datasets.OxfordIIITPet(pet_root.parent, split=split, target_types="segmentation")
    binary = D.OxfordPetSegmentation(pet_root.parent, split)
    trimap = D.OxfordPetSegmentation(pet_root, split, mode="trimap")
    assert len(binary) == len(trimap) == len(theirs) == (20 if split == "trainval" else 8)
    for (image, b), (_, t), (pil_image, pil_trimap) in zip(binary, trimap, theirs):
        raw = np.asarray(pil_trimap)
        np.testing.assert_array_equal(image.numpy(), _pil_rgb(pil_image))
        np.testing.assert_array_equal(b.numpy(), np.isin(raw, [1, 3]).astype(np.int64))  # pet+border -> 1
        np.testing.assert_array_equal(t.numpy(), np.select([raw == 2, raw == 1, raw == 3], [0, 1, 2]))
    assert binary.class_names == ["background", "pet"] and binary.num_classes == 2
    assert trimap.class_names == ["background", "pet", "border"] and trimap.ignore_index is None


def test_pets_seeded_stratified_validation_split(pet_root):
    train = D.OxfordPetSegmentation(pet_root, "train", val_fraction=0.2, seed=3)
    val = D.OxfordPetSegmentation(pet_root, "val", val_fraction=0.2, seed=3)
    trainval = D.OxfordPetSegmentation(pet_root, "trainval")
    assert sorted(train.ids + val.ids) == sorted(trainval.ids) and not set(train.ids) & set(val.ids)
    assert sorted(val.breeds) == [0, 1, 2, 3]  # one of each breed's 5 images
    assert D.OxfordPetSegmentation(pet_root, "val", val_fraction=0.2, seed=3).ids == val.ids
    other = {tuple(D.OxfordPetSegmentation(pet_root, "val", val_fraction=0.2, seed=s).ids) for s in range(6)}
    assert len(other) > 1
    with pytest.raises(ValueError, match="split must be one of"):
        D.OxfordPetSegmentation(pet_root, "validation")


def test_pets_bad_trimap_value_and_missing_trimap(pet_root, tmp_path):
    import shutil

    pet = Path(shutil.copytree(pet_root, tmp_path / "oxford-iiit-pet"))
    path = pet / "annotations" / "trimaps" / "Bengal_2.png"
    arr = np.array(Image.open(path))
    arr[0, 0] = 0
    Image.fromarray(arr, mode="L").save(path)
    ds = D.OxfordPetSegmentation(pet, "trainval")
    with pytest.raises(D.LabelError, match=r"Bengal_2\.png holds values \[0\].*1 \(pet\), 2 \(background\)"):
        ds[ds.ids.index("Bengal_2")]
    (pet / "annotations" / "trimaps" / "pug_1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"trimap for id 'pug_1' listed in .*trainval\.txt"):
        D.OxfordPetSegmentation(pet, "trainval")


def test_pets_presets_flip_image_and_mask_together(pet_root):
    ds = D.OxfordPetSegmentation(pet_root, "test", transforms=presets.pets_train(size=32))
    image, mask = ds[0]
    assert image.shape == (3, 32, 32) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert mask.dtype == torch.int64 and set(mask.unique().tolist()) <= {0, 1}


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    trees.write_cifar_batches(root)
    return root


@pytest.mark.parametrize("train", [True, False])
def test_cifar_matches_torchvision_sample_by_sample(cifar_root, train, monkeypatch):
    # the fixture files are not the official bytes: switch off torchvision's md5 checks
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    ours = D.CIFAR10(cifar_root, train=train)
    theirs = torchvision.datasets.CIFAR10(str(cifar_root), train=train)
    assert len(ours) == len(theirs) == (30 if train else 6)
    for (image, label), (pil_image, their_label) in zip(ours, theirs):
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        np.testing.assert_array_equal(image.numpy(), _pil_rgb(pil_image))
        assert label == their_label
    assert ours.class_names == theirs.classes and ours.num_classes == 10
    assert D.CIFAR10(cifar_root / "cifar-10-batches-py", train=train).targets == ours.targets


def test_cifar_reference_presets(cifar_root):
    train = D.CIFAR10(cifar_root, train=True, transform=presets.cifar_train())
    test = D.CIFAR10(cifar_root, train=False, transform=presets.cifar_eval())
    image, _ = train[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    raw, _ = D.CIFAR10(cifar_root, train=False)[0]
    expected = (raw.float() / 255 - torch.tensor(presets.CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(
        presets.CIFAR10_STD
    ).view(3, 1, 1)
    torch.testing.assert_close(test[0][0], expected)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_refuses_pickles_that_would_run_code_and_names_missing_batches(cifar_root, tmp_path):
    import shutil

    folder = Path(shutil.copytree(cifar_root / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py"))
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": _Evil(), "labels": [0]}, f, protocol=2)
    with pytest.raises(ValueError, match=r"test_batch.*refusing to load (__builtin__|builtins)\.print"):
        D.CIFAR10(tmp_path, train=False)
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3"):
        D.CIFAR10(tmp_path, train=True)


# ---------------------------------------------------------------------------------------------------------------
# Dog images
# ---------------------------------------------------------------------------------------------------------------
def test_dogs_match_image_folder_on_a_clean_tree(tmp_path):
    root = trees.write_dog_tree(tmp_path / "dogs", junk=False)
    ours = D.DogImages(root, "all")
    theirs = torchvision.datasets.ImageFolder(str(root))
    assert len(ours) == len(theirs) == 15
    for (image, label), (pil_image, their_label) in zip(ours, theirs):
        np.testing.assert_array_equal(image.numpy(), _pil_rgb(pil_image))
        assert label == their_label
    assert ours.classes == ["Chihuahua", "Japanese_spaniel", "beagle"]
    assert ours.class_to_idx == {"Chihuahua": 0, "Japanese_spaniel": 1, "beagle": 2}
    assert ours.folders == theirs.classes


def test_dogs_skip_hidden_and_non_images_and_split_stratified(tmp_path):
    root = trees.write_dog_tree(tmp_path / "dogs", junk=True)
    every = D.DogImages(root, "all")
    assert len(every) == 15 and every.num_classes == 3  # no .cache class, no .DS_Store / ._ghost / notes.txt
    train = D.DogImages(root, "train", val_fraction=0.2, seed=1)
    val = D.DogImages(root, "val", val_fraction=0.2, seed=1)
    assert sorted(p for p, _ in train.samples + val.samples) == sorted(p for p, _ in every.samples)
    assert sorted(y for _, y in val.samples) == [0, 1, 2]  # round(5*.2)=1, round(4*.2)=1, round(6*.2)=1
    assert D.DogImages(root, "val", val_fraction=0.2, seed=1).samples == val.samples
    image, label = D.DogImages(root, "val", transform=presets.dogs_eval(24))[0]
    assert image.shape == (3, 24, 24) and image.dtype == torch.float32 and isinstance(label, int)


def test_dogs_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="dog image folder not found"):
        D.DogImages(tmp_path / "missing")
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(FileNotFoundError, match="no class folders"):
        D.DogImages(tmp_path / "empty_root")
    root = trees.write_dog_tree(tmp_path / "dogs", junk=False)
    (root / "n02099999-Ghost").mkdir()
    with pytest.raises(ValueError, match=r"without images.*n02099999-Ghost"):
        D.DogImages(root, "all")
    (root / "n02099999-Ghost").rmdir()
    bad = next((root / "n02088364-beagle").iterdir())
    bad.write_bytes(b"not a jpeg at all")
    ds = D.DogImages(root, "all")
    index = [p for p, _ in ds.samples].index(bad)
    with pytest.raises(D.CorruptImageError, match=bad.name):
        ds[index]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        skipping = D.DogImages(root, "all", skip_corrupt=True)
        _, label = skipping[index]
    assert skipping.skipped == [str(bad)] and label == 2


# ---------------------------------------------------------------------------------------------------------------
# paired transforms and label checks
# ---------------------------------------------------------------------------------------------------------------
def _coordinate_pair(h: int = 40, w: int = 56):
    """An image whose pixels spell their own coordinates and a mask computed from the same coordinates."""
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image = torch.stack([yy, xx, (yy * 7 + xx) % 256]).to(torch.uint8)
    mask = ((yy // 5 + xx // 7) % 4).to(torch.int64)
    mask[:, :3] = 255  # an ignore strip
    return image, mask


def _mask_from_image(image: torch.Tensor) -> torch.Tensor:
    yy, xx = image[0].long(), image[1].long()
    out = (yy // 5 + xx // 7) % 4
    return torch.where(xx < 3, torch.full_like(out, 255), out)


@pytest.mark.parametrize("seed", range(6))
def test_random_flips_and_crops_keep_image_and_mask_aligned(seed):
    image, mask = _coordinate_pair()
    t = v2.Compose(
        [
            v2.RandomResizedCrop((24, 24), scale=(0.2, 1.0), interpolation=v2.InterpolationMode.NEAREST),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomCrop(30, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}),
        ]
    )
    torch.manual_seed(seed)
    out_image, out_mask = D.apply_paired(t, image, mask)
    assert out_mask.dtype == torch.int64 and type(out_mask) is torch.Tensor
    inside = out_image.sum(0) > 0  # pixels that came from the image (not the padding)
    assert torch.equal(out_mask[inside], _mask_from_image(out_image)[inside])
    assert set(out_mask.unique().tolist()) <= set(mask.unique().tolist())


def test_bilinear_presets_resample_masks_with_nearest_only():
    image, mask = _coordinate_pair()
    torch.manual_seed(0)
    for t in (presets.segmentation_train(32, hflip=0.5, vflip=0.5, color_jitter=0.2), presets.voc_eval(20)):
        out_image, out_mask = D.apply_paired(t, image, mask)
        assert out_image.dtype == torch.float32 and out_mask.dtype == torch.int64
        assert set(out_mask.unique().tolist()) <= {0, 1, 2, 3, 255}


def test_apply_paired_refuses_transforms_that_make_masks_float():
    image, mask = _coordinate_pair()
    to_float = v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.float32})
    with pytest.raises(TypeError, match="masks\\s+must stay integer labels"):
        D.apply_paired(to_float, image, mask)
    with pytest.raises(TypeError, match="must take and return \\(image, mask\\)"):
        D.apply_paired(lambda i, m: i, image, mask)


def test_check_mask_labels_and_stratified_split():
    D.check_mask_labels(torch.tensor([[0, 2, 255]]), 3, ignore_index=255)
    with pytest.raises(D.LabelError, match=r"frame_7 holds values \[-1, 3\]"):
        D.check_mask_labels(np.array([[0, 3, -1]]), 3, source="frame_7")
    train, val = D.stratified_split([0] * 10 + [1] * 5 + [2], 0.2, seed=0)
    labels = [0] * 10 + [1] * 5 + [2]
    assert sorted(labels[i] for i in val) == [0, 0, 1] and sorted(train + val) == list(range(16))
