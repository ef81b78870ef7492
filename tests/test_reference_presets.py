"""The reference presets resize exactly as the course code's Pillow calls do (images and masks, several sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from encdec.datasets import presets
from encdec.normalization import IMAGENET_MEAN, IMAGENET_STD

SIZES = [(37, 53), (300, 400), (256, 256), (181, 97)]  # smaller, larger, equal, portrait


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth gradients plus noise: real-looking enough for resampling filters to matter."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x / w, y / h, (x + y) / (w + h)], axis=-1) * 200
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


def _blobs(rng: np.random.Generator, h: int, w: int, labels) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    mask = np.zeros((h, w), np.uint8)
    for label in labels:
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.4) * min(h, w)
        mask[(y - cy) ** 2 + (x - cx) ** 2 < r**2] = label
    return mask


def _run(preset, image: np.ndarray, mask: np.ndarray):
    x, y = preset(tv_tensors.Image(torch.from_numpy(image).permute(2, 0, 1)),
                  tv_tensors.Mask(torch.from_numpy(mask.astype(np.int64))))
    return x.permute(1, 2, 0).numpy(), y.numpy()


@pytest.mark.parametrize("h, w", SIZES)
def test_voc_reference_preset_equals_pillow_nearest(h, w):
    rng = np.random.default_rng(h * w)
    image, mask = _photo(rng, h, w), _blobs(rng, h, w, [3, 15, 255])
    x, y = _run(presets.voc_eval(256), image, mask)
    want_image = np.asarray(Image.fromarray(image).resize((256, 256), Image.NEAREST)) / 255.0
    want_image = (want_image - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(x, want_image, atol=1e-5)
    assert np.array_equal(y, np.asarray(Image.fromarray(mask).resize((256, 256), Image.NEAREST)))
    train_x, train_y = _run(presets.voc_train(256, augment=False), image, mask)
    assert np.array_equal(train_x, x) and np.array_equal(train_y, y)


@pytest.mark.parametrize("h, w", SIZES)
def test_pet_reference_preset_equals_pillow_bilinear_and_nearest(h, w):
    rng = np.random.default_rng(h + w)
    image, mask = _photo(rng, h, w), _blobs(rng, h, w, [1, 2])
    x, y = _run(presets.pets_eval(256), image, mask)
    want = np.asarray(Image.fromarray(image).resize((256, 256), Image.BILINEAR)) / 255.0  # ToTensor's scaling
    np.testing.assert_allclose(x, want, atol=1e-6)
    assert np.array_equal(y, np.asarray(Image.fromarray(mask).resize((256, 256), Image.NEAREST)))


def test_torch_nearest_is_not_pillow_nearest():
    """Why the presets go through Pillow: torch's "nearest" picks other pixels (the report's numbers would move)."""
    rng = np.random.default_rng(0)
    image = _photo(rng, 300, 400)
    ours, _ = _run(presets.voc_eval(256), image, np.zeros((300, 400), np.uint8))
    torchs, _ = _run(presets.voc_eval(256, interpolation=torch_nearest()), image, np.zeros((300, 400), np.uint8))
    assert not np.allclose(ours, torchs)


def torch_nearest():
    from torchvision.transforms import InterpolationMode

    return InterpolationMode.NEAREST
