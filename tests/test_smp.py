"""segmentation_models_pytorch checkpoints load into encdec's Unet, FPN, DeepLabV3+ and Linknet and give smp's
outputs; the builders' defaults are smp's; other smp encoders are refused by name. Run against smp itself (skipped
when it is not installed)."""

from __future__ import annotations

import inspect

import pytest
import torch

import encdec

smp = pytest.importorskip("segmentation_models_pytorch")

PAIRS = [("unet", "Unet"), ("fpn", "FPN"), ("deeplabv3plus", "DeepLabV3Plus"), ("linknet", "Linknet"),
         ("pspnet", "PSPNet")]


def _randomize(model: torch.nn.Module) -> None:
    """Give every normalisation layer non-default statistics and affine values, so eval outputs depend on them."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
            if isinstance(m, (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)


def _smp_file(tmp_path, cls_name: str, encoder: str, **kwargs):
    torch.manual_seed(0)
    reference = getattr(smp, cls_name)(encoder, encoder_weights=None, **kwargs)
    _randomize(reference)
    path = tmp_path / f"smp_{cls_name}_{encoder}.pth"
    torch.save(reference.state_dict(), path)
    return reference.eval(), path


@pytest.mark.parametrize("encoder", ["resnet18", pytest.param("resnet34", marks=pytest.mark.slow),
                                     pytest.param("resnet50", marks=pytest.mark.slow)])
@pytest.mark.parametrize("builder, cls_name", PAIRS)
def test_smp_checkpoints_reproduce_smps_outputs(builder, cls_name, encoder, tmp_path):
    reference, path = _smp_file(tmp_path, cls_name, encoder, classes=5)
    model = encdec.create_model(builder, encoder=encoder, num_classes=5, weights=path).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected, got = reference(x), model(x)
    assert got.shape == expected.shape == (2, 5, 64, 96)
    assert (got - expected).abs().max().item() <= 1e-5


@pytest.mark.slow
def test_timm_encoder_checkpoints_of_smp_load(tmp_path):
    pytest.importorskip("timm")
    reference, path = _smp_file(tmp_path, "Unet", "tu-resnet18", classes=3)
    model = encdec.unet(encoder="timm:resnet18", num_classes=3, weights=path).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("builder, cls_name, arguments", [("fpn", "FPN", 5), ("deeplabv3plus", "DeepLabV3Plus", 5),
                                                          ("pspnet", "PSPNet", 4)])
def test_builder_defaults_are_smps(builder, cls_name, arguments):
    ours = inspect.signature(encdec.model_info(builder).builder).parameters
    theirs = inspect.signature(getattr(smp, cls_name).__init__).parameters
    shared = [name for name in ours if name in theirs and name not in ("in_channels", "encoder_weights")]
    assert len(shared) >= arguments
    for name in shared:
        mine, smps = ours[name].default, theirs[name].default
        assert (tuple(mine) == tuple(smps)) if isinstance(mine, tuple) else mine == smps, name
    assert ours["encoder"].default == theirs["encoder_name"].default


def test_linknet_default_encoder_is_smps():
    ours = inspect.signature(encdec.model_info("linknet").builder).parameters
    assert ours["encoder"].default == inspect.signature(smp.Linknet.__init__).parameters["encoder_name"].default


def test_an_smp_checkpoint_of_another_encoder_is_refused_naming_what_loads(tmp_path):
    _, path = _smp_file(tmp_path, "FPN", "mobilenet_v2", classes=2)  # smp's own MobileNet taps, not encdec's
    with pytest.raises(encdec.WeightsError) as info:
        encdec.fpn(encoder="resnet34", weights=path)
    assert "resnet18, resnet34, resnet50" in str(info.value) and "smp" in str(info.value)


def test_pspnet_leaves_out_the_encoder_stages_smp_keeps_but_does_not_run(tmp_path):
    _, path = _smp_file(tmp_path, "PSPNet", "resnet18", classes=2)
    model = encdec.pspnet(encoder="resnet18")
    report = encdec.load_weights(model, path)
    dropped = set(report.dropped)
    assert report.complete and dropped and all(k.startswith(("encoder.layer3.", "encoder.layer4.")) for k in dropped)
    assert not any(k.startswith(("encoder.layer3.", "encoder.layer4.")) for k in model.state_dict())


def test_the_smp_aux_head_is_dropped_and_reported(tmp_path):
    _, path = _smp_file(tmp_path, "FPN", "resnet18", classes=2, aux_params={"classes": 4})
    model = encdec.fpn(encoder="resnet18")
    report = encdec.load_weights(model, path)
    assert report.complete and any(k.startswith("classification_head.") for k in report.dropped)


def test_smp_mismatched_classes_get_the_num_classes_hint(tmp_path):
    _, path = _smp_file(tmp_path, "DeepLabV3Plus", "resnet18", classes=7)
    with pytest.raises(encdec.WeightsError, match="num_classes=7"):
        encdec.deeplabv3plus(encoder="resnet18", num_classes=2, weights=path)


def test_earlier_encdec_checkpoints_of_resnet_unets_still_load(tmp_path):
    from encdec.encoders.course import torchvision_resnet_encoder

    torch.manual_seed(0)
    old_encoder = torchvision_resnet_encoder("resnet34")  # the encoder unet(encoder=...) had before
    model = encdec.unet(encoder="resnet34", num_classes=2)
    state = {f"encoder.{k}": v for k, v in old_encoder.state_dict().items()}
    state.update({k: v for k, v in model.state_dict().items() if not k.startswith("encoder.")})
    torch.save(state, tmp_path / "old.pth")
    fresh = encdec.unet(encoder="resnet34", num_classes=2, weights=tmp_path / "old.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(fresh.encoder(x)[-1], old_encoder.eval()(x)[-1])
