"""Encoders: torchvision backbones against torchvision's own feature extraction of the same weights, timm
backbones against timm's own model, the input-channel adaptation, dilation, and the refusals."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

import encdec
from encdec.encoders import (
    BACKBONES,
    EncoderError,
    TorchvisionEncoder,
    adapt_input_channels,
    create_encoder,
    dilate,
    list_encoders,
    timm_available,
)
from encdec.encoders.torchvision_backbones import torchvision_backbone

# A representative sample of the families; benchmarks/encoders.py runs every backbone.
SAMPLE = ["resnet18", "resnext50_32x4d", "efficientnet_b0", "efficientnet_v2_s", "convnext_tiny", "regnet_x_400mf",
          "regnet_y_400mf", "mobilenet_v2", "mobilenet_v3_large", "densenet121", "vgg11_bn", "mnasnet0_5",
          "shufflenet_v2_x0_5"]


def _randomize_norms(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)


def test_the_zoo_covers_the_families_asked_for():
    names = list_encoders()
    assert len(names) >= 40
    for family in ("resnet18", "resnet152", "resnext101_32x8d", "wide_resnet101_2", "efficientnet_b7",
                   "efficientnet_v2_l", "convnext_large", "regnet_x_8gf", "regnet_y_16gf", "mobilenet_v2",
                   "mobilenet_v3_large", "densenet201", "vgg19_bn"):
        assert family in names


QUICK = ("resnet18", "mobilenet_v3_large")


@pytest.mark.parametrize("name", [n if n in QUICK else pytest.param(n, marks=pytest.mark.slow) for n in SAMPLE])
def test_features_equal_torchvisions_own_feature_extraction(name, tmp_path):
    torch.manual_seed(0)
    reference = torchvision_backbone(name).eval()
    _randomize_norms(reference)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)  # the layout of torchvision's ImageNet files, classifier included
    encoder = create_encoder(name, weights=path).eval()
    taps = BACKBONES[name][0].split()
    extractor = create_feature_extractor(reference, return_nodes={t: t for t in taps})
    for side in (64, 96):
        x = torch.randn(2, 3, side, side)
        with torch.no_grad():
            ours = encoder(x)
            theirs = list(extractor(x).values())
        assert len(ours) == len(theirs) == len(encoder.strides)
        for feature, expected, channels, stride in zip(ours, theirs, encoder.out_channels, encoder.strides):
            torch.testing.assert_close(feature, expected, rtol=1e-4, atol=1e-5)
            assert feature.shape[1] == channels  # the declared channels ...
            assert feature.shape[-1] * stride == side  # ... and strides are what the network gives


@pytest.mark.slow
def test_densenet_files_in_torchvisions_old_key_layout_load(tmp_path):
    reference = torchvision_backbone("densenet121")
    old = {k.replace("norm1.", "norm.1.").replace("conv2.", "conv.2."): v for k, v in reference.state_dict().items()}
    assert any(".norm.1." in k for k in old)
    torch.save(old, tmp_path / "densenet121.pth")
    encoder = create_encoder("densenet121", weights=tmp_path / "densenet121.pth")
    torch.testing.assert_close(encoder.features.denseblock1.denselayer1.norm1.weight,
                               reference.features.denseblock1.denselayer1.norm1.weight)


def test_a_file_of_another_architecture_is_refused_by_key(tmp_path):
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(encdec.WeightsError, match=r"mis-shaped|missing") as info:
        create_encoder("resnet50", weights=tmp_path / "r18.pth")
    assert "r18.pth" in str(info.value) and "resnet50" in str(info.value)


def test_unknown_encoders_get_close_matches():
    with pytest.raises(EncoderError, match="Did you mean 'resnet34'"):
        create_encoder("resnet43")
    with pytest.raises(EncoderError, match="Did you mean 'efficientnet_b0'"):
        encdec.fpn(encoder="efficientnet-b0")


def test_in_channels_adapt_the_rgb_kernel_like_smp(tmp_path):
    reference = torchvision.models.resnet18()
    torch.save(reference.state_dict(), tmp_path / "r18.pth")
    rgb = reference.conv1.weight.detach()
    gray = create_encoder("resnet18", in_channels=1, weights=tmp_path / "r18.pth")
    torch.testing.assert_close(gray.conv1.weight, rgb.sum(1, keepdim=True))
    five = create_encoder("resnet18", in_channels=5, weights=tmp_path / "r18.pth")
    expected = torch.stack([rgb[:, i % 3] for i in range(5)], dim=1) * 3 / 5
    torch.testing.assert_close(five.conv1.weight, expected)
    assert five(torch.zeros(1, 5, 64, 64))[-1].shape == (1, 512, 2, 2)
    fresh = create_encoder("efficientnet_b0", in_channels=4)
    assert fresh.features[0][0].weight.shape[1] == 4
    with pytest.raises(EncoderError, match="no convolution taking 3 channels"):
        adapt_input_channels(torch.nn.Linear(3, 3), 2, pretrained=False)


@pytest.mark.slow
def test_dilation_keeps_the_maps_at_the_output_stride():
    for name in ("resnet50", "efficientnet_b0", "convnext_tiny"):
        encoder = create_encoder(name, output_stride=8).eval()
        sides = [f.shape[-1] for f in encoder(torch.zeros(1, 3, 64, 64))]
        assert encoder.strides[-1] == 8
        assert [64 // s for s in encoder.strides] == sides
    with pytest.raises(EncoderError, match="pooling"):
        create_encoder("densenet121", output_stride=16)
    with pytest.raises(EncoderError, match="power of two"):
        dilate(create_encoder("resnet18"), 12)


def test_the_encoder_state_dict_is_torchvisions_without_the_classifier():
    encoder = TorchvisionEncoder("resnet34")
    expected = {k for k in torchvision.models.resnet34().state_dict() if not k.startswith("fc.")}
    assert set(encoder.state_dict()) == expected


def test_encoders_build_on_the_meta_device_including_regnets():
    with torch.device("meta"):
        encoder = create_encoder("regnet_y_800mf")
    assert next(encoder.parameters()).device.type == "meta"
    assert encoder.out_channels == list(BACKBONES["regnet_y_800mf"][1])


timm_only = pytest.mark.skipif(not timm_available(), reason="timm is not installed")


@timm_only
@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "convnext_atto", "mobilenetv3_small_050"])
def test_timm_features_equal_timms_own_model(name, tmp_path):
    import timm

    torch.manual_seed(0)
    classifier = timm.create_model(name, pretrained=False)
    _randomize_norms(classifier)
    path = tmp_path / f"{name}.pth"
    torch.save(classifier.state_dict(), path)
    encoder = create_encoder(f"timm:{name}", weights=path).eval()
    reference = timm.create_model(name, features_only=True, pretrained=False).eval()
    _randomize_norms(reference)
    reference.load_state_dict({k: v for k, v in encoder.model.state_dict().items()})
    for side in (64, 96):
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            ours, theirs = encoder(x), reference(x)
        for feature, expected, stride in zip(ours, theirs, encoder.strides):
            torch.testing.assert_close(feature, expected)
            assert feature.shape[-1] * stride == side
    # every tensor is the file's (timm's feature wrappers may write "stages.0" as "stages_0")
    by_flat_name = {k.replace(".", "_"): v for k, v in classifier.state_dict().items()}
    for key, value in encoder.model.state_dict().items():
        torch.testing.assert_close(value, by_flat_name[key.replace(".", "_")])


@timm_only
def test_timm_channels_last_maps_reach_the_decoder_as_nchw():
    """Swin's features_only maps are NHWC (timm's output_fmt); the encoder hands NCHW maps with the declared
    channels to decoders, the permuted maps of timm's own model."""
    import timm

    import encdec

    torch.manual_seed(0)
    name = "swin_tiny_patch4_window7_224"
    encoder = create_encoder(f"timm:{name}").eval()
    reference = timm.create_model(name, features_only=True, pretrained=False).eval()
    reference.load_state_dict(encoder.model.state_dict())
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = encoder(x), reference(x)
    for feature, expected, channels, stride in zip(ours, theirs, encoder.out_channels, encoder.strides):
        assert expected.shape[-1] == channels  # timm's own maps are channels-last
        assert feature.shape == (1, channels, 224 // stride, 224 // stride)
        torch.testing.assert_close(feature, expected.permute(0, 3, 1, 2))
    model = encdec.fpn(encoder=f"timm:{name}", num_classes=3).eval()
    with torch.no_grad():
        assert model(x).shape == (1, 3, 224, 224)


@timm_only
def test_timm_files_of_another_model_are_refused_strictly(tmp_path):
    import timm

    torch.save(timm.create_model("resnet34", pretrained=False).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(encdec.WeightsError, match="unexpected"):
        create_encoder("timm:resnet18", weights=tmp_path / "r34.pth")
    with pytest.raises(EncoderError, match="Unknown timm model"):
        create_encoder("timm:resnet_does_not_exist")


@pytest.mark.parametrize("name, depth, kept", [("resnet18", 3, 3), ("efficientnet_b0", 3, 3), ("convnext_tiny", 3, 2),
                                               ("densenet121", 4, 4)])
def test_a_limited_depth_keeps_torchvisions_first_maps_and_drops_the_rest(name, depth, kept, tmp_path):
    torch.manual_seed(0)
    reference = torchvision_backbone(name).eval()
    _randomize_norms(reference)
    path = tmp_path / f"{name}.pth"
    torch.save(reference.state_dict(), path)  # the whole network's file: the stages left out are not refused
    encoder = create_encoder(name, weights=path, depth=depth).eval()
    taps = BACKBONES[name][0].split()[:kept]
    extractor = create_feature_extractor(reference, return_nodes={t: t for t in taps})
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = encoder(x), list(extractor(x).values())
    assert len(ours) == kept and encoder.strides == list(BACKBONES[name][2][:kept])
    assert max(encoder.strides) <= 2**depth
    for feature, expected in zip(ours, theirs):
        torch.testing.assert_close(feature, expected, rtol=1e-4, atol=1e-5)
    full = create_encoder(name)
    assert sum(p.numel() for p in encoder.parameters()) < sum(p.numel() for p in full.parameters())


def test_a_depth_without_maps_is_refused_by_value():
    with pytest.raises(EncoderError, match="convnext_tiny has no feature map within depth 1"):
        create_encoder("convnext_tiny", depth=1)
    with pytest.raises(EncoderError, match="depth must be a positive number of halvings"):
        create_encoder("resnet18", depth=0)


@pytest.mark.skipif(not timm_available(), reason="timm is not installed")
def test_timm_encoders_take_a_depth_through_out_indices():
    import timm

    encoder = create_encoder("timm:resnet18", depth=3).eval()
    reference = timm.create_model("resnet18", features_only=True, out_indices=(0, 1, 2)).eval()
    reference.load_state_dict(encoder.model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(encoder(x), reference(x)))
    assert encoder.strides == [2, 4, 8] and encoder.out_channels == [64, 64, 128]


@pytest.mark.skipif(not timm_available(), reason="timm is not installed")
def test_an_encoder_map_the_decoder_cannot_merge_is_refused_by_size():
    model = encdec.unet(encoder="timm:mobilevitv2_050", num_classes=2).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 128, 128)).shape == (1, 2, 128, 128)
        with pytest.raises(encdec.InputSizeError, match="gives a 4x4 map at stride 32 for a 96x96 input.*3x3.*64"):
            model(torch.zeros(1, 3, 96, 96))  # MobileViT-v2 pads its 3x3 patch grid to 4x4


def test_every_encoder_kind_declares_the_encoder_contract():
    from encdec.encoders import Encoder, create_encoder

    kinds = [create_encoder("resnet18"), create_encoder("resnet18", depth=3), create_encoder("mit_b0"),
             encdec.resnet34_unet().encoder, encdec.unet_pet().encoder]
    if encdec.encoders.timm_available():
        kinds += [create_encoder("timm:resnet18"), encdec.encoders.TimmViTEncoder("vit_tiny_patch16_224")]
    for encoder in kinds:
        assert isinstance(encoder, Encoder), type(encoder).__name__
        assert len(encoder.out_channels) == len(encoder.strides) and encoder.name
        maps = encoder.eval()(torch.zeros(1, 3, 64, 64))
        assert [m.shape[1] for m in maps] == list(encoder.out_channels)
        assert [64 // m.shape[-1] for m in maps] == list(encoder.strides), encoder.name
    assert create_encoder("resnet18", depth=3).left_out == ("layer3", "layer4")


def test_a_module_without_the_contract_is_refused_by_the_attributes_it_lacks():
    class Bare(torch.nn.Module):
        out_channels = [8]

        def forward(self, x):
            return [x]

    with pytest.raises(TypeError, match="lacks name, strides, left_out, size_multiple, fixed_size"):
        encdec.SegmentationModel(Bare(), torch.nn.Identity(), torch.nn.Identity(), num_classes=2, in_channels=3,
                                 size_multiple=1)
