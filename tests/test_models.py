"""Registry, builders, input-size rules and the torchvision encoders."""

import pytest
import torch
import torchvision

import encdec

ALL = ["custom_cnn", "deeplabv3", "deeplabv3plus", "dpt", "fpn", "linknet", "manet", "pan", "pspnet", "resfcn18",
       "resnet18_classifier", "resnet34_unet", "resnet50_cifar", "resnet50_unet", "segformer", "unet", "unet_pet",
       "unetplusplus", "upernet", "vgg16_cifar"]


def test_list_models_and_patterns():
    assert encdec.list_models() == ALL
    assert encdec.list_models("*unet*") == ["resnet34_unet", "resnet50_unet", "unet", "unet_pet", "unetplusplus"]
    assert encdec.list_models(task="classification") == ["custom_cnn", "resfcn18", "resnet18_classifier",
                                                         "resnet50_cifar", "vgg16_cifar"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="Did you mean 'resnet34_unet'"):
        encdec.create_model("resnet34unet")


def test_builders_are_keyword_only_and_record_their_config():
    with pytest.raises(TypeError, match="keyword"):
        encdec.unet(3)
    with pytest.raises(TypeError):
        encdec.create_model("unet", num_clases=3)
    model = encdec.create_model("unet_pet", num_classes=5, widths=(4, 8, 16, 32, 64))
    assert model.encdec_config == {"architecture": "unet_pet",
                                   "kwargs": {"num_classes": 5, "in_channels": 3, "widths": [4, 8, 16, 32, 64]}}
    assert encdec.model_info(model).task == "segmentation"


@pytest.mark.parametrize("name,size,classes", [
    ("unet", 48, 22), ("unet_pet", 37, 2), ("resnet34_unet", 128, 2), ("resnet50_unet", 40, 22),
])
def test_segmentation_shapes_follow_the_input(name, size, classes):
    model = encdec.create_model(name).eval()
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, size, size + model.size_multiple)).shape == (
            1, classes, size, size + model.size_multiple)


@pytest.mark.parametrize("name,bad,lo,hi", [
    ("unet", 250, 240, 256), ("resnet34_unet", 250, 192, 256), ("resnet50_unet", 250, 248, 256),
    ("unet_pet", 15, 16, 16), ("unet", 8, 16, 16),
])
def test_wrong_size_names_the_nearest_valid_sizes(name, bad, lo, hi):
    model = encdec.create_model(name)
    with pytest.raises(encdec.InputSizeError, match=f"Nearest valid sizes: {lo} and {hi}") as err:
        model(torch.zeros(1, 3, bad, 64))
    assert name in str(err.value)
    assert model.valid_size(bad) == hi


def test_encoder_unet_size_rule_and_channel_errors():
    model = encdec.unet(encoder="resnet18", num_classes=2)
    with pytest.raises(encdec.InputSizeError, match="divisible by 32"):
        model(torch.zeros(1, 3, 48, 48))
    with pytest.raises(encdec.InputSizeError, match="in_channels=1"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(encdec.InputSizeError, match=r"\(N, 3, H, W\)"):
        encdec.custom_cnn()(torch.zeros(2, 1, 32, 32))
    with pytest.raises(encdec.InputSizeError, match="input_size=32"):
        encdec.resfcn18(input_size=16)(torch.zeros(2, 3, 32, 32))


def test_in_channels_and_num_classes_are_honoured():
    model = encdec.unet(num_classes=5, in_channels=1, widths=(4, 8, 16, 32, 64)).eval()
    assert model(torch.zeros(2, 1, 32, 32)).shape == (2, 5, 32, 32)
    assert encdec.vgg16_cifar(num_classes=7, in_channels=1).eval()(torch.zeros(2, 1, 32, 32)).shape == (2, 7)


def test_full_size_resfcn18_on_meta_device():
    with torch.device("meta"):
        model = encdec.resfcn18()
        out = model.eval()(torch.zeros(2, 3, 192, 192))
    assert model.fc_in.weight.shape == (4096, 3 * 192 * 192)
    assert sum(p.numel() for p in model.parameters()) == 457_204_500
    assert out.shape == (2, 100)


def test_vgg_init_follows_the_reference():
    torch.manual_seed(0)
    conv = encdec.vgg16_cifar().features[0]
    assert torch.count_nonzero(conv.bias) == 0
    expected_std = (2.0 / (3 * 3 * 64)) ** 0.5
    assert abs(conv.weight.std().item() - expected_std) < 0.15 * expected_std


def _randomize_bn(module):
    g = torch.Generator().manual_seed(0)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return module.eval()


@pytest.mark.parametrize("arch", ["resnet18", pytest.param("resnet34", marks=pytest.mark.slow),
                                  pytest.param("resnet50", marks=pytest.mark.slow)])
def test_torchvision_encoder_features_are_identical(tmp_path, arch):
    tv = _randomize_bn(getattr(torchvision.models, arch)(weights=None))
    path = tmp_path / f"{arch}-imagenet.pth"
    torch.save(tv.state_dict(), path)
    model = encdec.unet(encoder=arch, encoder_weights=path, num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        ours = model.encoder(x)
        y = tv.relu(tv.bn1(tv.conv1(x)))
        expected = [y]
        y = tv.maxpool(y)
        for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
            y = layer(y)
            expected.append(y)
        assert [f.shape[-1] for f in ours] == [32, 16, 8, 4, 2]
        for a, b in zip(ours, expected):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert model(x).shape == (1, 3, 64, 64)


def test_resnet18_classifier_from_imagenet_file(tmp_path):
    tv = _randomize_bn(torchvision.models.resnet18(weights=None))
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(tv.state_dict(), path)
    model = encdec.resnet18_classifier(num_classes=4, encoder_weights=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        tv.fc = torch.nn.Identity()
        torch.testing.assert_close(model.forward_features(x), tv(x))
    with pytest.raises(encdec.WeightsError, match="num_classes=1000"):
        encdec.resnet18_classifier(num_classes=4, weights=path)
    with pytest.raises(encdec.WeightsError, match="missing"):
        encdec.unet(encoder="resnet34", encoder_weights=path)


def test_every_builder_on_the_encoder_contract_defaults_to_two_outputs():
    """One default across the encoder builders: unet(encoder=...) gives 2 outputs like fpn, linknet, ..., and
    records the number it was built with (so from_pretrained rebuilds the same model)."""
    import inspect

    defaults = {}
    for name in encdec.list_models():
        params = inspect.signature(encdec.model_info(name).builder).parameters
        if "encoder" in params:
            defaults[name] = params["num_classes"].default
    assert defaults.pop("unet") is None  # resolved by the encoder: 22 without one (the VOC reference), else 2
    assert "fpn" in defaults and set(defaults.values()) == {2}, defaults
    for name in ("unet", "fpn"):
        model = encdec.create_model(name, encoder="resnet18")
        assert (model.num_classes, model.encdec_config["kwargs"]["num_classes"]) == (2, 2), name


def test_the_course_segmentation_models_default_to_their_reference_checkpoints_outputs():
    """The defaults a reference checkpoint needs stay: unet without an encoder 22 (VOC + boundary), resnet50_unet
    22, the Pet models 2."""
    seen = {}
    for name in encdec.list_models():
        info = encdec.model_info(name)
        if info.task != "segmentation":
            continue
        for reference in info.reference_checkpoints:
            model = encdec.create_model(name, **dict(reference.requires))
            seen[name] = model.num_classes
            assert model.num_classes == reference.num_classes == model.encdec_config["kwargs"]["num_classes"], name
    assert seen == {"unet": 22, "resnet50_unet": 22, "unet_pet": 2, "resnet34_unet": 2}
