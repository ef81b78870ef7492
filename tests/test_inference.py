"""encdec.predict and encdec.optimize_for_inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import encdec
from encdec.inference import IMAGENET_MEAN, IMAGENET_STD, optimize_for_inference, predict

WIDTHS = (8, 16, 32, 64, 128)


def _tiny_unet(num_classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    model = encdec.unet(num_classes=num_classes, widths=WIDTHS)
    _randomise_batchnorm(model)
    return model.eval()


def _randomise_batchnorm(model: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so folding them is actually exercised."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            if module.affine:
                module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)


class _Recorder(nn.Module):
    """Wraps a model and records the input shapes it was called with."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.size_multiple = model.size_multiple
        self.min_size = model.min_size
        self.num_classes = model.num_classes
        self.shapes: list = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.model(x)


# ---------------------------------------------------------------------------------------------- predict


def test_predict_on_valid_size_equals_argmax_of_the_model():
    model = _tiny_unet()
    x = torch.randn(3, 3, 32, 48)
    with torch.no_grad():
        expected = model(x).argmax(1)
    labels = predict(model, x, precision="fp32", channels_last=False, batch_size=2)
    assert labels.dtype == torch.int64 and labels.shape == (3, 32, 48)
    assert torch.equal(labels, expected)


def test_predict_pads_to_the_size_multiple_and_crops_back():
    model = _Recorder(_tiny_unet()).eval()
    x = torch.randn(2, 3, 30, 45)
    labels = predict(model, x, precision="fp32", optimize=False)
    assert model.shapes == [(2, 3, 32, 48)]
    assert labels.shape == (2, 30, 45) and labels.dtype == torch.int64
    # the top-left of a reflection-padded input sees the same pixels as the padded input itself
    padded = nn.functional.pad(x, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        expected = model.model(padded).argmax(1)[:, :30, :45]
    assert torch.equal(labels, expected)


def test_predict_probabilities():
    model = _tiny_unet()
    x = torch.randn(2, 3, 16, 16)
    probs = predict(model, x, probabilities=True, precision="fp32")
    assert probs.shape == (2, 3, 16, 16) and probs.dtype == torch.float32
    assert torch.allclose(probs.sum(1), torch.ones(2, 16, 16), atol=1e-5)
    assert torch.equal(probs.argmax(1), predict(model, x, precision="fp32"))


def test_predict_images_of_any_kind_and_size(tmp_path):
    model = _tiny_unet()
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in [(20, 33), (20, 33), (40, 17)]]
    path = tmp_path / "image.png"
    Image.fromarray(arrays[2]).save(path)
    inputs = [Image.fromarray(arrays[0]), arrays[1], str(path)]
    outputs = predict(model, inputs, precision="fp32")
    assert isinstance(outputs, list) and [tuple(o.shape) for o in outputs] == [(20, 33), (20, 33), (40, 17)]
    # each equals the prediction for the same pixels given as a normalised float tensor
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    for array, output in zip(arrays, outputs):
        tensor = torch.from_numpy(((array / 255.0 - mean) / std).transpose(2, 0, 1)).float()
        assert torch.equal(output, predict(model, tensor, precision="fp32"))
    single = predict(model, Image.fromarray(arrays[0]), precision="fp32")
    assert torch.equal(single, outputs[0])
    # a uint8 batch (N, C, H, W) is N images, like the list
    batch = torch.from_numpy(np.stack(arrays[:2])).permute(0, 3, 1, 2)
    batched = predict(model, batch, precision="fp32")
    assert isinstance(batched, torch.Tensor) and batched.shape == (2, 20, 33)
    assert torch.equal(batched[0], outputs[0]) and torch.equal(batched[1], outputs[1])


def test_predict_uses_the_model_normalisation_when_it_has_one():
    model = _tiny_unet()
    model.encdec_config = dict(model.encdec_config, mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25])
    array = np.full((16, 16, 3), 191, dtype=np.uint8)
    tensor = torch.full((3, 16, 16), (191 / 255 - 0.5) / 0.25)
    assert torch.equal(predict(model, array, precision="fp32"), predict(model, tensor, precision="fp32"))


def test_predict_classifier_returns_one_label_per_image():
    torch.manual_seed(0)
    model = encdec.custom_cnn(num_classes=4).eval()
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        expected = model(x).argmax(1)
    labels = predict(model, x, precision="fp32", batch_size=2)
    assert labels.shape == (5,) and torch.equal(labels, expected)


def test_predict_auto_precision_agrees_with_fp32():
    model = _tiny_unet()
    x = torch.randn(2, 3, 32, 32)
    fast, exact = predict(model, x), predict(model, x, precision="fp32")
    agreement = (fast == exact).float().mean().item()
    assert agreement > 0.95, f"auto precision labels agree with fp32 on only {agreement:.1%} of pixels"


def test_predict_restores_training_mode():
    model = _tiny_unet().train()
    predict(model, torch.randn(1, 3, 16, 16), precision="fp32")
    assert model.training


@pytest.mark.parametrize(
    ("images", "kwargs", "error", "message"),
    [
        (torch.randn(3, 16, 16), {"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
        (torch.randn(2, 2, 3, 16, 16), {}, ValueError, r"must be \(N, C, H, W\) or \(C, H, W\)"),
        ("missing.png", {}, FileNotFoundError, "missing.png"),
        (object(), {}, TypeError, "cannot read an image from object"),
        (np.zeros((4, 4, 4, 4), np.uint8), {}, ValueError, r"must be \(H, W\) or \(H, W, C\)"),
        (np.zeros((16, 16, 4), np.uint8), {}, ValueError, "4 channels but mean/std have 3"),
        (torch.randn(1, 3, 16, 16), {"precision": "fp16", "device": "cpu"}, ValueError, "needs a CUDA device"),
    ],
)
def test_predict_names_bad_inputs(images, kwargs, error, message):
    with pytest.raises(error, match=message):
        predict(_tiny_unet(), images, **kwargs)


# ---------------------------------------------------------------------------------------------- optimize_for_inference


def _batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize(
    ("name", "build", "shape"),
    [
        ("tiny unet", lambda: encdec.unet(num_classes=3, widths=WIDTHS), (2, 3, 32, 32)),
        pytest.param("resnet34_unet", lambda: encdec.resnet34_unet(num_classes=2), (1, 3, 64, 64),
                     marks=pytest.mark.slow),
        ("custom_cnn", lambda: encdec.custom_cnn(num_classes=4), (2, 3, 32, 32)),
    ],
)
def test_optimize_for_inference_folds_batchnorm_and_keeps_outputs(name, build, shape):
    torch.manual_seed(0)
    model = build()
    _randomise_batchnorm(model)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(*shape)
    with torch.no_grad():
        expected = model(x)
    fast = optimize_for_inference(model)
    assert _batchnorms(model) > 0 and _batchnorms(fast) == 0, name
    assert not fast.training
    assert next(p for p in fast.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
    assert type(fast) is type(model) and fast.num_classes == model.num_classes
    with torch.no_grad():
        got = fast(x.contiguous(memory_format=torch.channels_last))
    scale = expected.abs().max().item()
    assert torch.allclose(got, expected, atol=1e-5 * max(scale, 1.0), rtol=1e-4), (
        f"{name}: max difference {(got - expected).abs().max().item():.3g} (outputs up to {scale:.3g})"
    )
    # the original model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class _SharedConv(nn.Module):
    """A convolution whose output feeds a BatchNorm and a skip connection: folding it would be wrong."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 1)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y + self.bn2(self.conv2(y))


def test_optimize_for_inference_only_folds_safe_pairs():
    torch.manual_seed(0)
    model = _SharedConv()
    _randomise_batchnorm(model)
    model.eval()
    fast = optimize_for_inference(model, channels_last=False)
    assert isinstance(fast.bn, nn.BatchNorm2d)  # conv output also used by the skip: kept
    assert isinstance(fast.bn2, nn.Identity)  # conv2 feeds only bn2: folded
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-5)


def test_optimize_for_inference_keeps_grouped_transposed_convolutions_unfolded():
    torch.manual_seed(0)
    model = nn.Sequential(nn.ConvTranspose2d(4, 4, 2, stride=2, groups=4), nn.BatchNorm2d(4))
    _randomise_batchnorm(model)
    model.eval()
    fast = optimize_for_inference(model, channels_last=False)
    assert isinstance(fast[1], nn.BatchNorm2d)  # folding would scale the wrong weight axis
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert torch.allclose(fast(x), model(x), atol=1e-5)


def test_optimize_for_inference_inplace():
    model = _tiny_unet()
    assert optimize_for_inference(model, inplace=True) is model and _batchnorms(model) == 0


# ---------------------------------------------------------------------------------------------- tiles


class _PointwiseNet(nn.Module):
    """A fully convolutional toy whose output at a pixel depends on that pixel alone, so tiling is exact."""

    num_classes = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("tile, overlap", [(32, 0.25), (50, 0.5), (64, 0.0), (500, 0.25)])
def test_tiled_prediction_equals_untiled_on_a_pointwise_net(tile, overlap):
    model = _PointwiseNet().eval()
    x = torch.randn(2, 3, 70, 93)
    untiled = predict(model, x, precision="fp32", probabilities=True)
    tiled = predict(model, x, precision="fp32", probabilities=True, tile=tile, overlap=overlap, batch_size=3)
    assert torch.allclose(tiled, untiled, atol=1e-6)
    assert torch.equal(predict(model, x, precision="fp32", tile=tile, overlap=overlap), untiled.argmax(1))


def test_flip_tta_averages_the_flipped_predictions():
    model = _tiny_unet().eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1).flip(-1)
                    + model(x.flip(-2)).softmax(1).flip(-2)) / 3
    got = predict(model, x, precision="fp32", probabilities=True, tta=True, optimize=False)
    assert torch.allclose(got, expected, atol=1e-5)
    tiled = predict(model, x, precision="fp32", probabilities=True, tta=True, tile=32, optimize=False)
    assert tiled.shape == expected.shape and torch.allclose(tiled.sum(1), torch.ones(1, 32, 48), atol=1e-5)


class _BlockNet(nn.Module):
    """Pools 16x16 blocks, mixes channels, upsamples back: each output pixel depends on its aligned 16x16 block
    alone. Tiles that started off that grid would pool other blocks, so only grid-aligned tiling is exact."""

    num_classes = 4
    size_multiple = 16

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mix, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(11, 4, 1)

    def forward(self, x):
        pooled = nn.functional.interpolate(self.mix(nn.functional.max_pool2d(x, 16)).relu(), scale_factor=16.0)
        return self.head(torch.cat([pooled, x], dim=1))


@pytest.mark.parametrize("tile, overlap", [(32, 0.25), (40, 0.5), (64, 0.3), (500, 0.25)])
def test_tiles_on_the_model_grid_equal_untiled_for_a_model_that_pools(tile, overlap):
    model = _BlockNet().eval()
    x = torch.randn(1, 3, 75, 110)  # neither side a multiple of 16: the last tiles reach into the padding
    untiled = predict(model, x, precision="fp32", probabilities=True, optimize=False)
    tiled = predict(model, x, precision="fp32", probabilities=True, tile=tile, overlap=overlap, optimize=False)
    assert torch.allclose(tiled, untiled, atol=1e-6)


def test_tiles_are_rounded_up_to_the_size_multiple():
    model = _Recorder(_tiny_unet()).eval()
    labels = predict(model, torch.randn(1, 3, 75, 110), precision="fp32", tile=40, overlap=0.25, optimize=False)
    assert labels.shape == (1, 75, 110)
    assert {shape[-2:] for shape in model.shapes} == {(48, 48)}  # image content, not padding, fills each tile
    # 48-pixel tiles on the 16-pixel grid of the 80x112 padded extent, 32 apart: 2 rows x 3 columns (40-pixel
    # tiles padded to 48 would have taken 3 x 4)
    assert sum(shape[0] for shape in model.shapes) == 6


def test_tile_errors_name_the_option():
    with pytest.raises(ValueError, match="overlap must be a fraction in \\[0, 1\\), got 1.0"):
        predict(_PointwiseNet(), torch.randn(1, 3, 64, 64), tile=32, overlap=1.0)
    with pytest.raises(ValueError, match="tile must be a positive number of pixels or None, got 0"):
        predict(_PointwiseNet(), torch.randn(1, 3, 64, 64), tile=0)
    classifier = encdec.custom_cnn(num_classes=3).eval()
    with pytest.raises(ValueError, match="tile= and tta= apply to segmentation models"):
        predict(classifier, torch.randn(1, 3, 64, 64), tile=32)
