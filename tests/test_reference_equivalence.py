"""encdec's builders reproduce the reference architectures checkpoint for checkpoint.

``tests/reference/`` restates every reference network of ``reference-architectures.md`` from the spec alone
(module names = the checkpoints' keys, quirks included). Here each restatement is randomised (parameters and
BatchNorm running statistics), saved the ways users' files were saved, loaded with ``encdec.load_weights``
into ``encdec.create_model(name)``, and both must give the same eval-mode outputs (float32, max abs diff
<= 1e-5) at the reference size and at a second valid size. Spatial sizes are small to keep CPU time low.
"""

from __future__ import annotations

import functools
import zlib
from collections import OrderedDict
from typing import Any, NamedTuple

import pytest
import torch

import encdec

try:  # tests/ as a package (tests/__init__.py present) or tests/ on sys.path (pytest's rootdir insertion)
    from tests import reference as ref
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref

ATOL = 1e-5


class Case(NamedTuple):
    name: str
    kwargs: dict[str, Any]
    sizes: tuple[Any, ...]  # side or (H, W); the first is the reference size
    calib_batch: int  # batch used to calibrate BN running statistics (at the largest size)


CASES = [
    Case("vgg16_cifar", {}, (32,), 16),
    Case("resnet50_cifar", {}, (32,), 16),
    Case("custom_cnn", {"num_classes": 5}, (32,), 16),
    Case("unet", {}, (64, 48), 4),
    Case("resnet50_unet", {}, (64, 96), 4),
    Case("resnet34_unet", {}, (64, 128), 4),
    # (36, 40): non-square with different pads per axis, catches a dx/dy swap in the zero padding
    Case("unet_pet", {"num_classes": 3}, (64, 40, (36, 40)), 4),
    Case("resnet18_classifier", {"num_classes": 5}, (64, 48), 8),
    Case("resfcn18", {"input_size": 16, "num_classes": 7}, (16,), 64),
]
CASE_BY_NAME = {c.name: c for c in CASES}

# (state-dict entries, parameters). vgg16_cifar .. resnet34_unet: the spec's numbers. unet_pet, custom_cnn,
# resnet18_classifier and full-size resfcn18 carry no number in the spec; these are counted by hand from its
# layer lists (e.g. resfcn18: fc1 110592*4096+4096, bn1 8192, blocks sum(3f^2/4 + 3f) over the 8 block
# widths, fc2 8*100+100; 2 + 5 + 8*14 + 2 entries).
SPEC_COUNTS = [
    ("vgg16_cifar", {}, 35, 14_983_498),
    ("resnet50_cifar", {}, 373, 14_750_730),
    ("unet", {"num_classes": 22}, 128, 31_392_086),
    ("resnet50_unet", {"num_classes": 22}, 245, 22_642_646),
    ("resnet50_unet", {"num_classes": 22, "narrow": True}, 245, 11_043_542),  # the layout encdec 0.1 built
    ("resnet34_unet", {"num_classes": 2}, 311, 38_345_024),
    ("unet_pet", {"num_classes": 2}, 74, 31_373_122),
    ("custom_cnn", {"num_classes": 4}, 39, 1_702_916),
    ("resnet18_classifier", {"num_classes": 4}, 122, 11_178_564),
    ("resfcn18", {"num_classes": 100, "input_size": 192}, 121, 457_204_500),
]

FORMATS = ["bare_ckpt", "state_dict_epoch_pth", "dataparallel_module_prefix"]


def _hw(size):
    return tuple(size) if isinstance(size, tuple) else (size, size)


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


@functools.lru_cache(maxsize=1)  # cases run grouped by architecture; keep one reference alive at a time
def reference_data(name: str):
    """Randomised reference state dict, inputs and reference outputs for every size of the case."""
    case = CASE_BY_NAME[name]
    seed = zlib.crc32(name.encode())
    gen = torch.Generator().manual_seed(seed)
    model = ref.REFERENCES[name](**case.kwargs)
    largest = max((_hw(s) for s in case.sizes), key=lambda hw: hw[0] * hw[1])
    calib = torch.randn(case.calib_batch, 3, *largest, generator=gen)
    ref.randomize_(model, seed=seed, calibration_input=calib)
    model.eval()
    inputs, outputs = [], []
    with torch.no_grad():
        for size in case.sizes:
            x = torch.randn(2, 3, *_hw(size), generator=gen)
            inputs.append(x)
            outputs.append(model(x.clone()))
    return model.state_dict(), inputs, outputs


def _save(sd, fmt, directory):
    if fmt == "bare_ckpt":
        path, obj = directory / "x.ckpt", sd
    elif fmt == "state_dict_epoch_pth":
        path, obj = directory / "x.pth", {"state_dict": sd, "epoch": 3}
    elif fmt == "dataparallel_module_prefix":
        path, obj = directory / "x_dp.pth", OrderedDict(("module." + k, v) for k, v in sd.items())
    else:  # pragma: no cover
        raise ValueError(fmt)
    torch.save(obj, path)
    return path


def _load_encdec(name, kwargs, path):
    model = encdec.create_model(name, **kwargs)
    encdec.load_weights(model, path, strict=True)
    model.eval()
    return model


def _assert_same_outputs(model, name, inputs, outputs):
    case = CASE_BY_NAME[name]
    with torch.no_grad():
        for size, x, want in zip(case.sizes, inputs, outputs):
            assert want.std() > 1e-2, "degenerate reference output, the comparison would mean nothing"
            got = model(x.clone())
            assert got.dtype == torch.float32
            assert got.shape == want.shape, (
                f"{name} at {size}: shape {tuple(got.shape)} != {tuple(want.shape)}"
            )
            diff = (got - want).abs().max().item()
            assert diff <= ATOL, (
                f"{name} at {size}: max abs diff {diff:.3g} > {ATOL} (output max {want.abs().max():.3g})"
            )


@pytest.mark.parametrize("name, kwargs, entries, params", SPEC_COUNTS,
                         ids=[row[0] + ("-narrow" if row[1].get("narrow") else "") for row in SPEC_COUNTS])
def test_restatement_matches_spec_counts(name, kwargs, entries, params):
    with torch.device("meta"):  # resfcn18 at 192 holds 1.8 GB of fc1: count without allocating
        model = ref.REFERENCES[name](**kwargs)
    assert len(model.state_dict()) == entries
    assert _n_params(model) == params


def test_encdec_full_size_resfcn18_parameter_count_on_meta():
    with torch.device("meta"):
        model = encdec.create_model("resfcn18")
    assert _n_params(model) == 457_204_500


FULL_SIZE_UNETS = ("unet", "unet_pet", "resnet34_unet", "resnet50_unet")  # seconds each: only in the full run


@pytest.mark.parametrize(
    "name, fmt",
    # every model in the plain layout in the quick loop; the container layouts in the full run
    [pytest.param(c.name, fmt, marks=() if fmt == "bare_ckpt" and c.name not in FULL_SIZE_UNETS else pytest.mark.slow)
     for c in CASES for fmt in FORMATS],
    ids=[f"{c.name}-{fmt}" for c in CASES for fmt in FORMATS],
)
def test_reference_checkpoint_gives_reference_outputs(name, fmt, tmp_path):
    sd, inputs, outputs = reference_data(name)
    path = _save(sd, fmt, tmp_path)
    model = _load_encdec(name, CASE_BY_NAME[name].kwargs, path)
    path.unlink()
    _assert_same_outputs(model, name, inputs, outputs)


@pytest.mark.slow
def test_resnet50_unet_checkpoint_with_unused_unetconv2_1_loads_strict(tmp_path):
    sd, inputs, outputs = reference_data("resnet50_unet")
    assert {"UnetConv2_1.weight", "UnetConv2_1.bias"} <= set(sd)  # the reference always saves them
    path = _save(sd, "bare_ckpt", tmp_path)
    model = encdec.create_model("resnet50_unet")
    report = encdec.load_weights(model, path, strict=True)
    assert report.dropped == ["UnetConv2_1.bias", "UnetConv2_1.weight"]  # renamed keys are not "dropped"
    model.eval()
    _assert_same_outputs(model, "resnet50_unet", inputs, outputs)


@pytest.mark.parametrize("layout", ["wrapper_resnet18_prefix", "plain_torchvision"])
def test_resnet18_classifier_checkpoint_layouts(layout, tmp_path):
    sd, inputs, outputs = reference_data("resnet18_classifier")
    if layout == "wrapper_resnet18_prefix":
        assert all(k.startswith("resnet18.") for k in sd)  # the seed's self.resnet18 wrapper
    else:  # the same network saved as a bare torchvision resnet18 (fc replaced)
        sd = OrderedDict((k[len("resnet18.") :], v) for k, v in sd.items())
        assert "conv1.weight" in sd and "fc.weight" in sd
    path = _save(sd, "bare_ckpt", tmp_path)
    model = _load_encdec("resnet18_classifier", {"num_classes": 5}, path)
    _assert_same_outputs(model, "resnet18_classifier", inputs, outputs)


@pytest.mark.slow
def test_unet_checkpoint_with_22_outputs_into_21_classes_names_the_count(tmp_path):
    path = tmp_path / "UNet_best_model.pth"
    torch.save(ref.UNetVOC(num_classes=22).state_dict(), path)
    model = encdec.unet(num_classes=21)
    with pytest.raises(encdec.WeightsError, match="num_classes=22"):
        encdec.load_weights(model, path, strict=True)
