"""encdec.viz: palette colours, lookup colouring, overlays, prediction grids and history plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from encdec import viz

# The first VOC colours, as listed by the VOC devkit (and seed 000's colour map, entries 9-21).
VOC_COLOURS = {
    0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128), 5: (128, 0, 128),
    6: (0, 128, 128), 7: (128, 128, 128), 8: (64, 0, 0), 9: (192, 0, 0), 10: (64, 128, 0), 11: (192, 128, 0),
    12: (64, 0, 128), 13: (192, 0, 128), 14: (64, 128, 128), 15: (192, 128, 128), 16: (0, 64, 0),
    17: (128, 64, 0), 18: (0, 192, 0), 19: (128, 192, 0), 20: (0, 64, 128), 255: (224, 224, 192),
}  # fmt: skip


def _loop_colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Reference: colour label by label (a loop over classes, never over pixels)."""
    out = np.zeros(labels.shape + (3,), np.uint8)
    for k in np.unique(labels):
        out[labels == k] = palette[k]
    return out


def test_voc_palette_matches_the_devkit_colours():
    pal = viz.voc_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    for k, rgb in VOC_COLOURS.items():
        assert tuple(pal[k]) == rgb
    assert tuple(viz.PALETTES["voc22"][21]) == (224, 224, 192)
    assert viz.PALETTES["binary"][:2].tolist() == [[0, 0, 0], [255, 176, 0]]


def test_colorize_is_a_lookup_for_numpy_and_torch():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 21, size=(2, 9, 11))
    want = _loop_colorize(labels, viz.voc_palette())
    got = viz.colorize(labels)
    assert got.dtype == np.uint8 and got.shape == (2, 9, 11, 3)
    np.testing.assert_array_equal(got, want)
    got_t = viz.colorize(torch.from_numpy(labels))
    assert isinstance(got_t, torch.Tensor) and got_t.dtype == torch.uint8
    np.testing.assert_array_equal(got_t.numpy(), want)


@pytest.mark.parametrize("ignore", [255, -1, 300])
def test_colorize_paints_ignore_labels(ignore):
    labels = np.array([[0, 1], [ignore, 2]])
    out = viz.colorize(labels, ignore_index=ignore, ignore_color=(1, 2, 3))
    assert tuple(out[1, 0]) == (1, 2, 3) and tuple(out[0, 1]) == (128, 0, 0)
    out_t = viz.colorize(torch.from_numpy(labels), ignore_index=ignore, ignore_color=(1, 2, 3))
    np.testing.assert_array_equal(out_t.numpy(), out)


def test_colorize_rejects_labels_without_a_colour():
    with pytest.raises(ValueError, match=r"labels \[-1\] have no colour"):
        viz.colorize(np.array([[0, -1]]))
    with pytest.raises(ValueError, match=r"\[300\]"):
        viz.colorize(torch.tensor([[300]]))
    with pytest.raises(ValueError, match="unknown palette 'nope'"):
        viz.colorize(np.zeros((2, 2), int), palette="nope")


def test_custom_palette_and_overlay():
    pal = [(10, 20, 30), (200, 0, 0)]
    assert viz.colorize(np.array([1]), palette=pal).tolist() == [[200, 0, 0]]
    image = np.full((2, 3, 3), 100, np.uint8)
    labels = np.array([[0, 1, 1], [0, 0, 1]])
    out = viz.overlay(image, labels, alpha=0.5, palette=pal)
    assert out[0, 0].tolist() == [100, 100, 100]  # background left alone
    assert out[0, 1].tolist() == [150, 50, 50]
    np.testing.assert_array_equal(viz.overlay(image, labels, alpha=0.0), image)


def test_to_rgb_undoes_normalisation():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    raw = torch.rand(2, 3, 4, 5)
    norm = (raw - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    out = viz.to_rgb(norm, mean, std)
    assert out.shape == (2, 4, 5, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out, (raw.permute(0, 2, 3, 1).numpy() * 255), atol=1.0)


def test_prediction_grid_tiles_image_target_prediction():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 6, 7, generator=g)
    targets = torch.randint(0, 4, (3, 6, 7), generator=g)
    targets[0, 0, 0] = 255
    logits = torch.randn(3, 4, 6, 7, generator=g)
    pad = 2
    grid = viz.prediction_grid(images, targets, logits, ignore_index=255, max_items=2, pad=pad)
    h, w = 6 + pad, 7 + pad
    assert grid.shape == (2 * h + pad, 3 * w + pad, 3)

    def tile(row: int, col: int) -> np.ndarray:
        return grid[row * h + pad : (row + 1) * h, col * w + pad : (col + 1) * w]

    for row in range(2):
        np.testing.assert_array_equal(tile(row, 0), viz.to_rgb(images[row]))
        np.testing.assert_array_equal(tile(row, 1), viz.colorize(targets[row].numpy(), ignore_index=255))
        np.testing.assert_array_equal(tile(row, 2), viz.colorize(logits[row].argmax(0).numpy()))
    assert tuple(grid[pad, w + pad]) == (224, 224, 192)


def test_save_prediction_grid_and_mask_round_trip(tmp_path):
    images = torch.rand(2, 3, 5, 5)
    targets = torch.randint(0, 2, (2, 5, 5))
    path = viz.save_prediction_grid(tmp_path / "sub" / "val.png", images, targets, targets, palette="binary",
                                    annotate=False)
    np.testing.assert_array_equal(
        np.asarray(Image.open(path)), viz.prediction_grid(images, targets, targets, palette="binary")
    )
    labels = np.array([[0, 15, 255], [3, 3, 1]])
    mask_path = viz.save_mask(tmp_path / "m.png", labels)
    assert Image.open(mask_path).mode == "P"
    np.testing.assert_array_equal(np.asarray(Image.open(mask_path)), labels)
    assert np.asarray(Image.open(mask_path).convert("RGB"))[0, 1].tolist() == [192, 128, 128]


def test_saved_grid_has_titled_columns_and_a_legend_of_the_classes_present(tmp_path):
    images = torch.rand(2, 3, 8, 8)
    targets = torch.zeros(2, 8, 8, dtype=torch.long)
    targets[:, 2:5, 2:5] = 1
    preds = targets.clone()
    preds[0, 0, 0] = 3
    path = viz.save_prediction_grid(tmp_path / "val.png", images, targets, preds, palette="voc", pad=2,
                                    class_names=["background", "cat", "dog", "bird"])
    picture = np.asarray(Image.open(path).convert("RGB"))
    bare = viz.prediction_grid(images, targets, preds, palette="voc", pad=2)
    scale = 12  # 8-pixel tiles are enlarged to at least 96 pixels
    band = 16
    grid = picture[band : band + bare.shape[0] * scale, : bare.shape[1] * scale]
    np.testing.assert_array_equal(grid[::scale, ::scale], bare)
    header = picture[:band]
    column = (8 + 2) * scale
    for index in range(3):  # a title over each column
        assert (header[:, 2 * scale + index * column : (index + 1) * column] < 128).any()
    footer = picture[band + bare.shape[0] * scale :]
    voc = viz.get_palette("voc")
    for label in (0, 1, 3):  # the swatches of the classes present, and nothing for "dog"
        assert (footer == voc[label]).all(axis=-1).sum() >= 100, label
    assert not (footer == voc[2]).all(axis=-1).any()


def test_binary_foreground_is_visible_on_white():
    foreground = np.array(viz.get_palette("binary")[1], dtype=float)
    luminance = foreground @ np.array([0.2126, 0.7152, 0.0722])
    assert luminance < 200 and np.abs(foreground - 255).max() > 100


def test_plot_history_writes_a_png(tmp_path):
    class History:
        def to_dict(self):
            return {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7], "val_miou": [0.1, 0.3, 0.5]}

    fig = viz.plot_history(History(), tmp_path / "curves.png")
    assert len(fig.axes) == 2 and (tmp_path / "curves.png").stat().st_size > 0
    fig = viz.plot_history([{"loss": 1.0, "acc": 0.2}, {"loss": 0.5, "acc": 0.6}], keys=["acc"])
    assert len(fig.axes) == 1
    with pytest.raises(KeyError, match="miou"):
        viz.plot_history({"loss": [1.0]}, keys=["miou"])


def test_plot_history_without_matplotlib_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"encdec\[plot\]"):
        viz.plot_history({"loss": [1.0]})
