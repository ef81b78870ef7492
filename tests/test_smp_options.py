"""smp's options and saved folders, against segmentation_models_pytorch itself: each loads with smp's outputs or is
refused by name, never loaded with other outputs (a sample of ``benchmarks.smp_sweep``; skipped without smp)."""

from __future__ import annotations

import json

import pytest
import torch

import encdec
from encdec.encoders import EncoderError
from encdec.models.smp_config import SmpOptionError, from_smp_config

smp = pytest.importorskip("segmentation_models_pytorch")
sweep = pytest.importorskip("benchmarks.smp_sweep")

QUICK = [
    ("Unet", "resnet18", {"decoder_interpolation": "bilinear"}, "equal"),
    ("Unet", "resnet18", {"decoder_attention_type": "scse", "decoder_use_norm": False}, "equal"),
    ("Linknet", "resnet18", {"encoder_depth": 4}, "equal"),
    ("Unet", "densenet121", {}, "refused"),  # same key names as encdec's densenet, other taps
]
SLOW = [
    ("FPN", "resnet18", {}, "equal"),
    ("DeepLabV3Plus", "resnet18", {"encoder_depth": 4}, "equal"),
    ("PSPNet", "resnet18", {"decoder_use_norm": False}, "equal"),
    ("Unet", "resnet18", {"activation": "sigmoid"}, "equal"),
    ("Unet", "resnet18", {"encoder_depth": 3, "decoder_channels": [64, 32, 16]}, "equal"),
    ("FPN", "resnet18", {"encoder_depth": 4}, "refused"),
    ("Unet", "resnet18", {"aux_params": {"classes": 4}}, "equal"),
    ("Linknet", "vgg11", {}, "refused"),
    ("FPN", "tu-resnet18", {"decoder_merge_policy": "cat"}, "equal"),
]


@pytest.mark.parametrize("arch, encoder, options, status", QUICK + [pytest.param(*row, marks=pytest.mark.slow)
                                                                    for row in SLOW],
                         ids=[f"{r[0]}-{r[1]}-{json.dumps(r[2])}" for r in QUICK + SLOW])
def test_smp_rows_load_equal_or_are_refused(arch, encoder, options, status):
    if encoder.startswith("tu-"):
        pytest.importorskip("timm")
    row = sweep.run_row(arch, encoder, options)
    assert row["status"] == status, row
    if status == "refused":  # both ways of loading say why
        assert row["folder"]["message"] and row["file"]["outcome"] == "refused" and row["file"]["message"]


def _smp_model(cls_name, tmp_path, **options):
    torch.manual_seed(0)
    model = getattr(smp, cls_name)(encoder_weights=None, classes=2, **options)
    sweep._randomize(model, 0)
    model.eval()
    folder = tmp_path / "smp-model"
    model.save_pretrained(str(folder))
    return model, folder


def test_a_bare_state_dict_of_another_encoders_taps_is_refused(tmp_path):
    model, _ = _smp_model("Unet", tmp_path, encoder_name="densenet121")
    torch.save(model.state_dict(), tmp_path / "unet_densenet.pth")  # every key and shape fits encdec's densenet121
    with pytest.raises(encdec.WeightsError, match="not proven to tap the feature maps smp's encoder"):
        encdec.unet(encoder="densenet121", num_classes=2, weights=tmp_path / "unet_densenet.pth")


def test_options_a_bare_state_dict_shows_are_named(tmp_path):
    model, _ = _smp_model("Unet", tmp_path, encoder_name="resnet18", decoder_attention_type="scse",
                          decoder_use_norm=False)
    torch.save(model.state_dict(), tmp_path / "scse.pth")
    with pytest.raises(encdec.WeightsError, match="decoder_attention_type='scse' and decoder_use_norm=False"):
        encdec.unet(encoder="resnet18", num_classes=2, weights=tmp_path / "scse.pth")
    loaded = encdec.unet(encoder="resnet18", num_classes=2, decoder_attention_type="scse", decoder_use_norm=False,
                         weights=tmp_path / "scse.pth").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max().item() <= 1e-5


def test_a_weights_file_beside_an_smp_config_is_checked_against_it(tmp_path):
    _, folder = _smp_model("Unet", tmp_path, encoder_name="resnet18", decoder_interpolation="bilinear")
    with pytest.raises(SmpOptionError, match="built with decoder_interpolation='bilinear', this unet with "
                                             "decoder_interpolation='nearest'"):
        encdec.unet(encoder="resnet18", num_classes=2, weights=folder / "model.safetensors")
    model = encdec.unet(encoder="resnet18", num_classes=2, decoder_interpolation="bilinear",
                        weights=folder / "model.safetensors")
    assert model.encdec_config["kwargs"]["decoder_interpolation"] == "bilinear"


def test_smp_activation_is_recorded_and_applied_by_predict(tmp_path):
    reference, folder = _smp_model("Unet", tmp_path, encoder_name="resnet18", activation="sigmoid")
    model = encdec.from_pretrained(folder)
    assert model.encdec_config["activation"] == "sigmoid"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = reference(x)
        logits = model.eval()(x)
    assert logits.min() < 0  # the forward returns logits, as losses need
    scores = encdec.predict(model, x, probabilities=True, precision="fp32", optimize=False)
    assert (scores - expected).abs().max().item() <= 1e-5
    resaved = encdec.from_pretrained(encdec.save_pretrained(model, tmp_path / "encdec-copy"))
    assert resaved.encdec_config["activation"] == "sigmoid"


def test_unsupported_options_are_refused_by_name_before_any_tensor_is_read(tmp_path):
    folder = tmp_path / "smp-folder"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_model_class": "Unet", "encoder_name": "resnet18",
                                                     "classes": 2, "decoder_use_norm": "inplace"}))
    (folder / "model.safetensors").write_bytes(b"not read")
    with pytest.raises(SmpOptionError, match="decoder_use_norm='inplace' is not supported yet"):
        encdec.from_pretrained(folder)
    for config, message in [({"_model_class": "SegNext"}, "smp's SegNext is not supported yet"),
                            ({"_model_class": "FPN", "encoder_name": "efficientnet-b0"},
                             "encoder_name='efficientnet-b0' is not supported"),
                            ({"_model_class": "FPN", "upsampling": 2}, "upsampling=2"),
                            ({"_model_class": "Unet", "activation": "tanh"}, "activation='tanh'")]:
        with pytest.raises(SmpOptionError, match=message):
            from_smp_config(config)


def test_linknet_refuses_an_encoder_it_cannot_run_at_build_time():
    with pytest.raises(EncoderError, match="linknet .* needs maps of stride 2 and coarser; vgg11"):
        encdec.linknet(encoder="vgg11")


def test_an_encdec_config_beside_a_file_must_name_the_model(tmp_path):
    folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tmp_path / "run")
    torch.save(encdec.vgg16_cifar(num_classes=3).state_dict(), folder / "other.pth")  # no metadata of its own
    with pytest.raises(encdec.WeightsError, match="the config.json beside it records a custom_cnn, not a vgg16_cifar"):
        encdec.load_weights(encdec.vgg16_cifar(num_classes=3), folder / "other.pth")


def test_encdec_convert_turns_an_smp_folder_into_an_encdec_one(tmp_path, capsys):
    from encdec.cli import main

    reference, folder = _smp_model("Linknet", tmp_path, encoder_name="resnet18", decoder_use_norm=False,
                                   activation="sigmoid")
    assert main(["convert", str(folder), str(tmp_path / "converted")]) == 0
    assert "verified" in capsys.readouterr().out
    config = json.loads((tmp_path / "converted" / "config.json").read_text())
    assert config["architecture"] == "linknet" and config["kwargs"]["decoder_use_norm"] is False
    assert config["activation"] == "sigmoid"
    model = encdec.from_pretrained(tmp_path / "converted")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (encdec.predict(model, x, probabilities=True, precision="fp32", optimize=False)
                - reference(x)).abs().max().item() <= 1e-5
