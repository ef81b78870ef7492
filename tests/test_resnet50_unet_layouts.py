"""``resnet50_unet``'s two layouts: the course listing's (wide non-downsampling bottlenecks, the default) and the
narrow one encdec 0.1 built, whose files keep loading.

The listing is restated in ``tests/reference/resnet50_unet.py`` (``narrow=True`` restates encdec 0.1's layout);
``tests/fixtures/resnet50_unet_encdec_0_1.json`` holds the key names and shapes encdec 0.1.0 saved for
``resnet50_unet()``, recorded from that release.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import encdec

try:  # tests/ as a package or tests/ on sys.path
    from tests import reference as ref
except ImportError:  # pragma: no cover - depends on how pytest was started
    import reference as ref

FIXTURE = Path(__file__).parent / "fixtures" / "resnet50_unet_encdec_0_1.json"
UNUSED = 64 * 64 * 3 * 3 + 64  # the course's UnetConv2_1 (ConvTranspose2d(64, 64, 3)), never run, not built


def _n_params(model):
    return sum(p.numel() for p in model.parameters())


def _randomized_reference(narrow: bool, seed: int):
    model = ref.UNetWithResnet50Encoder(narrow=narrow)
    ref.randomize_(model, seed=seed, calibration_input=torch.randn(2, 3, 64, 64,
                                                                    generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def _assert_same(model, reference, side=64):
    x = torch.randn(2, 3, side, side, generator=torch.Generator().manual_seed(side))
    with torch.no_grad():
        want = reference(x.clone())
        got = model.eval()(x.clone())
    assert want.std() > 1e-2
    assert (got - want).abs().max().item() <= 1e-5


def test_default_layout_is_the_listing():
    with torch.device("meta"):
        course, listing = encdec.resnet50_unet(), ref.UNetWithResnet50Encoder()
    assert _n_params(listing) == 22_642_646
    assert _n_params(course) == 22_605_718 == _n_params(listing) - UNUSED
    ours = {k: tuple(v.shape) for k, v in course.state_dict().items()}
    theirs = encdec.models.resnet_unet.resnet50_unet_filter(listing.state_dict(), None)
    assert ours == {k: tuple(v.shape) for k, v in theirs.items()}
    # layer2.0 keeps the resolution: its 3x3 convolution is 256 wide, not middle_channels=64
    assert course.state_dict()["encoder.stages.0.0.conv2.0.weight"].shape == (256, 256, 3, 3)


def test_course_checkpoint_loads_and_reports_its_layout(tmp_path):
    reference = _randomized_reference(narrow=False, seed=1)
    torch.save(reference.state_dict(), tmp_path / "UNet_resnet_course.pth")
    model = encdec.resnet50_unet()
    report = encdec.load_weights(model, tmp_path / "UNet_resnet_course.pth")
    assert (report.variant, report.variant_from_checkpoint) == ("course", False)
    _assert_same(model, reference)
    _assert_same(model, reference, side=96)


def _encdec_0_1_folder(tmp_path, reference) -> Path:
    """A save_pretrained folder as encdec 0.1.0 wrote it for ``resnet50_unet()``: no ``variant`` in its config."""
    recorded = json.loads(FIXTURE.read_text())
    state = encdec.models.resnet_unet.resnet50_unet_filter(reference.state_dict(), None)
    assert {k: list(v.shape) for k, v in state.items()} == recorded["shapes"]  # the names and shapes 0.1 saved
    folder = tmp_path / "run-0.1"
    folder.mkdir()
    kwargs = json.dumps(recorded["kwargs"], sort_keys=True)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors",
              metadata={"format": "pt", "encdec_version": "0.1.0", "architecture": "resnet50_unet", "kwargs": kwargs})
    config = {"architecture": "resnet50_unet", "kwargs": recorded["kwargs"], "encdec_version": "0.1.0"}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_encdec_0_1_narrow_files_keep_loading(tmp_path):
    reference = _randomized_reference(narrow=True, seed=2)
    folder = _encdec_0_1_folder(tmp_path, reference)
    assert "variant" not in json.loads((folder / "config.json").read_text())["kwargs"]

    loaded = encdec.from_pretrained(folder)
    assert loaded.encdec_config["kwargs"]["variant"] == "narrow"
    assert _n_params(loaded) == 11_006_614
    _assert_same(loaded, reference)

    for path in (folder, folder / "model.safetensors"):
        model = encdec.resnet50_unet()  # no variant named: the file's shapes choose
        report = encdec.load_weights(model, path / "model.safetensors" if path.is_dir() else path)
        assert (report.variant, report.variant_from_checkpoint) == ("narrow", True)
        _assert_same(model, reference)
    _assert_same(encdec.resnet50_unet(weights=folder / "model.safetensors"), reference)

    # saved again, the folder records the layout, and a course file loads back into the course layout
    resaved = encdec.from_pretrained(encdec.save_pretrained(loaded, tmp_path / "resaved"))
    assert json.loads((tmp_path / "resaved" / "config.json").read_text())["kwargs"]["variant"] == "narrow"
    _assert_same(resaved, reference)


def test_a_named_layout_is_kept_and_the_error_names_the_other(tmp_path):
    path = tmp_path / "narrow.safetensors"
    encdec.save_weights(encdec.resnet50_unet(variant="narrow"), path)
    with pytest.raises(encdec.WeightsError, match="holds the 'narrow' layout: build the model with variant='narrow'"):
        encdec.resnet50_unet(variant="course", weights=path)
    with pytest.raises(ValueError, match="variant must be one of 'course', 'narrow'"):
        encdec.resnet50_unet(variant="wide")


def test_a_switched_model_keeps_its_device_dtype_and_mode(tmp_path):
    path = tmp_path / "narrow.safetensors"
    encdec.save_weights(encdec.resnet50_unet(variant="narrow", num_classes=3), path)
    model = encdec.resnet50_unet(num_classes=3).double().eval()
    encdec.load_weights(model, path)
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert not any(m.training for m in model.modules())
    assert model(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).shape == (1, 3, 32, 32)


def test_a_file_of_no_layout_changes_nothing(tmp_path):
    path = tmp_path / "other.pth"
    torch.save(encdec.unet(widths=(4, 8, 16, 32, 64)).state_dict(), path)
    model = encdec.resnet50_unet()
    with pytest.raises(encdec.WeightsError, match="does not fit resnet50_unet"):
        encdec.load_weights(model, path)
    assert model.encdec_config["kwargs"]["variant"] == "course" and _n_params(model) == 22_605_718
