"""SyntheticShapes: deterministic, fast, well-formed, and solvable only by shape (not by colour)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from encdec.datasets import SHAPE_KINDS, SyntheticShapes


def test_items_have_the_documented_types_and_attributes():
    ds = SyntheticShapes(n=10, size=48, num_classes=4, seed=1)
    image, mask = ds[3]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert mask.shape == (48, 48) and mask.dtype == torch.int64
    assert len(ds) == 10 and ds.num_classes == 4 and ds.ignore_index is None
    assert ds.class_names == ["background", "circle", "square", "triangle"]
    assert len(ds.mean) == len(ds.std) == 3
    cls = SyntheticShapes(n=5, num_classes=5, task="classification")
    image, label = cls[0]
    assert image.shape == (3, 64, 64) and isinstance(label, int) and 0 <= label < 5
    assert cls.class_names == list(SHAPE_KINDS)


def test_deterministic_from_seed_and_index_without_touching_global_rng():
    np_state, torch_state = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone()
    a = SyntheticShapes(n=20, seed=7)
    first = [a[i] for i in (5, 0, 19)]
    again = [SyntheticShapes(n=20, seed=7)[i] for i in (5, 0, 19)]
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(SyntheticShapes(n=20, seed=8)[5][1], first[0][1])
    assert torch.equal(SyntheticShapes(n=100, seed=7)[5][0], first[0][0])  # item i does not depend on n
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.random.get_rng_state(), torch_state)


def test_labels_cover_every_class_and_images_are_roughly_standardised():
    ds = SyntheticShapes(n=64, size=32, num_classes=6, seed=0)
    images = torch.stack([ds[i][0] for i in range(64)])
    masks = torch.stack([ds[i][1] for i in range(64)])
    assert set(masks.unique().tolist()) == set(range(6))
    assert abs(float(images.mean())) < 0.2 and 0.8 < float(images.std()) < 1.2
    raw = SyntheticShapes(n=4, size=32, normalize=False)[0][0]
    assert 0.0 <= float(raw.min()) and float(raw.max()) <= 1.0


def test_classification_label_is_the_dominant_shape():
    ds = SyntheticShapes(n=40, size=64, num_classes=5, task="classification", seed=2)
    for i in range(40):
        _, mask, label = ds.draw(i)
        counts = np.bincount(mask.ravel(), minlength=6)[1:]
        assert counts.argmax() == label


def _per_pixel_colour_baseline_miou(ds: SyntheticShapes, n_train: int, n_test: int) -> float:
    """mIoU of the best per-pixel colour rule: nearest class-mean colour, fitted on training items."""

    def pixels(lo, hi):
        xs, ys = [], []
        for i in range(lo, hi):
            image, mask, _ = ds.draw(i)
            xs.append(image.reshape(3, -1).T)
            ys.append(mask.ravel())
        return np.concatenate(xs), np.concatenate(ys)

    x, y = pixels(0, n_train)
    means = np.stack([x[y == k].mean(0) for k in range(ds.num_classes)])
    xt, yt = pixels(n_train, n_train + n_test)
    pred = ((xt[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    ious = [np.sum((pred == k) & (yt == k)) / np.sum((pred == k) | (yt == k)) for k in range(ds.num_classes)]
    return float(np.mean(ious))


def test_colour_does_not_give_the_class_away():
    ds = SyntheticShapes(n=200, size=32, num_classes=4, seed=0)
    # every shape class has about the same average colour, so colour alone cannot separate them
    sums = np.zeros((4, 3))
    counts = np.zeros(4)
    for i in range(150):
        image, mask, _ = ds.draw(i)
        for k in range(1, 4):
            sel = mask == k
            sums[k] += image[:, sel].sum(1)
            counts[k] += sel.sum()
    shape_means = sums[1:] / counts[1:, None]
    assert np.abs(shape_means - shape_means.mean(0)).max() < 0.12
    assert _per_pixel_colour_baseline_miou(ds, 100, 50) < 0.35
    # an untrained model that predicts all background scores low too
    masks = np.stack([ds.draw(i)[1] for i in range(50)])
    iou_bg = np.mean(masks == 0)
    assert iou_bg / 4 < 0.3


def test_paired_transform_moves_mask_with_image():
    flip = v2.RandomHorizontalFlip(p=1.0)
    plain = SyntheticShapes(n=3, size=32, seed=4)
    flipped = SyntheticShapes(n=3, size=32, seed=4, transform=flip)
    image, mask = plain[1]
    f_image, f_mask = flipped[1]
    assert torch.equal(f_image, image.flip(-1)) and torch.equal(f_mask, mask.flip(-1))
    assert f_mask.dtype == torch.int64


def test_invalid_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"num_classes for task='segmentation' must be in \[2, 6\]"):
        SyntheticShapes(num_classes=9)
    with pytest.raises(ValueError, match="task must be"):
        SyntheticShapes(task="detection")
    with pytest.raises(IndexError, match="out of range"):
        SyntheticShapes(n=2)[2]


@pytest.mark.benchmark  # a timing: run with `pytest -m benchmark`, never part of make test
def test_drawing_is_fast():
    ds = SyntheticShapes(n=100, size=64, num_classes=6, seed=0)
    best = float("inf")
    for _ in range(3):  # best of three runs: robust to a busy machine
        start = time.perf_counter()
        for i in range(50):
            ds[i]
        best = min(best, (time.perf_counter() - start) / 50)
    assert best < 2e-3, f"{best * 1e3:.2f} ms per 64x64 item"
