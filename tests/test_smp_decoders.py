"""DeepLabV3, UNet++, MA-Net, PAN, UPerNet and Segformer (on Mix Transformers too) against
segmentation_models_pytorch and torchvision themselves: their checkpoints load unconverted into encdec's builders
and give their outputs (eval mode, BatchNorm statistics randomised, two input sizes); smp's save_pretrained folders
load through from_pretrained; the defaults are smp's. resnet18 and mit_b0 run in the quick suite, resnet34, an
EfficientNet (timm) and mit_b2 are slow. Skipped without smp."""

from __future__ import annotations

import inspect

import pytest
import torch

import encdec

smp = pytest.importorskip("segmentation_models_pytorch")
from test_smp import _randomize  # noqa: E402  (after the skip: it needs smp too)

# builder, smp class, two input sizes (PAN's pyramid pools its stride-16 map three times: 128 at least)
PAIRS = [
    ("deeplabv3", "DeepLabV3", [(64, 96), (128, 128)]),
    ("unetplusplus", "UnetPlusPlus", [(64, 96), (128, 128)]),
    ("manet", "MAnet", [(64, 96), (128, 128)]),
    ("pan", "PAN", [(128, 128), (128, 192)]),
    ("upernet", "UPerNet", [(64, 96), (128, 128)]),
    ("segformer", "Segformer", [(64, 96), (128, 128)]),
]
# encdec encoder, smp encoder
ENCODERS = [
    ("resnet18", "resnet18"),
    pytest.param("resnet34", "resnet34", marks=pytest.mark.slow),
    pytest.param("timm:efficientnet_b0", "tu-efficientnet_b0", marks=pytest.mark.slow),
]


def _max_diff(model, reference, sizes, batch: int = 2) -> float:
    worst = 0.0
    for height, width in sizes:
        x = torch.randn(batch, 3, height, width)
        with torch.no_grad():
            expected, got = reference(x), model(x)
        expected = expected["out"] if isinstance(expected, dict) else expected
        assert got.shape == expected.shape == (batch, expected.shape[1], height, width)
        worst = max(worst, (got - expected).abs().max().item())
    return worst


@pytest.mark.parametrize("encoder, smp_encoder", ENCODERS)
@pytest.mark.parametrize("builder, cls_name, sizes", PAIRS)
def test_smp_checkpoints_reproduce_smps_outputs(builder, cls_name, sizes, encoder, smp_encoder, tmp_path):
    if encoder.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = getattr(smp, cls_name)(smp_encoder, encoder_weights=None, classes=5)
    _randomize(reference)
    torch.save(reference.state_dict(), tmp_path / "smp.pth")
    model = encdec.create_model(builder, encoder=encoder, num_classes=5, weights=tmp_path / "smp.pth").eval()
    assert _max_diff(model, reference.eval(), sizes) <= 1e-5


@pytest.mark.parametrize("builder, cls_name, sizes", PAIRS)
def test_smp_folders_load_through_from_pretrained(builder, cls_name, sizes, tmp_path):
    torch.manual_seed(0)
    reference = getattr(smp, cls_name)("resnet18", encoder_weights=None, classes=3)
    _randomize(reference)
    reference.save_pretrained(str(tmp_path / "folder"))
    model = encdec.from_pretrained(tmp_path / "folder")
    assert model.encdec_config["architecture"] == builder
    assert _max_diff(model.eval(), reference.eval(), sizes[:1], batch=1) <= 1e-5


@pytest.mark.parametrize("builder, cls_name, sizes", PAIRS)
def test_builder_defaults_are_smps(builder, cls_name, sizes):
    ours = inspect.signature(encdec.model_info(builder).builder).parameters
    theirs = inspect.signature(getattr(smp, cls_name).__init__).parameters
    shared = [name for name in ours if name in theirs and name not in ("in_channels", "encoder_weights")]
    assert len(shared) >= 3
    for name in shared:
        mine, smps = ours[name].default, theirs[name].default
        assert (tuple(mine) == tuple(smps)) if isinstance(mine, tuple) else mine == smps, name
    assert ours["encoder"].default == theirs["encoder_name"].default


def _torchvision_deeplabv3(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    reference = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None,
                                                                   aux_loss=True)
    _randomize(reference)
    torch.save(reference.state_dict(), tmp_path / "deeplabv3_resnet50.pth")
    return reference.eval(), tmp_path / "deeplabv3_resnet50.pth"


def test_torchvision_deeplabv3_state_dicts_give_torchvisions_outputs_aux_head_included(tmp_path):
    reference, path = _torchvision_deeplabv3(tmp_path)
    model = encdec.deeplabv3(encoder="resnet50", num_classes=21, layout="torchvision", aux_loss=True,
                             weights=path).eval()
    for height, width in [(64, 96), (96, 64)]:
        x = torch.randn(1, 3, height, width)
        with torch.no_grad():
            expected, got = reference(x), model.forward_with_aux(x)
            main = model(x)
        assert set(got) == {"out", "aux"} and got["out"].shape == (1, 21, height, width)
        assert (got["out"] - expected["out"]).abs().max().item() <= 1e-5
        assert (got["aux"] - expected["aux"]).abs().max().item() <= 1e-5
        assert torch.equal(main, got["out"])  # forward returns the main logits alone


def test_torchvision_and_smp_deeplabv3_files_load_only_into_their_layout(tmp_path):
    _, path = _torchvision_deeplabv3(tmp_path)
    with pytest.raises(encdec.WeightsError, match="layout='torchvision'"):
        encdec.deeplabv3(encoder="resnet50", num_classes=21, weights=path)
    report = encdec.load_weights(encdec.deeplabv3(encoder="resnet50", num_classes=21, layout="torchvision"), path)
    assert report.complete and report.dropped and all(k.startswith("aux_classifier.") for k in report.dropped)
    smp_model = smp.DeepLabV3("resnet18", encoder_weights=None, classes=2)
    torch.save(smp_model.state_dict(), tmp_path / "smp.pth")
    with pytest.raises(encdec.WeightsError, match="layout='smp'"):
        encdec.deeplabv3(encoder="resnet18", layout="torchvision", weights=tmp_path / "smp.pth")


def test_refusals_name_the_argument():
    with pytest.raises(ValueError, match="aux_loss"):
        encdec.deeplabv3(encoder="resnet18", aux_loss=True)
    with pytest.raises(ValueError, match="layout"):
        encdec.deeplabv3(encoder="resnet18", layout="keras")
    with pytest.raises(encdec.encoders.EncoderError, match="torchvision"):
        encdec.deeplabv3(encoder="efficientnet_b0", layout="torchvision")
    with pytest.raises(encdec.encoders.EncoderError, match="unetplusplus needs one encoder map per halving"):
        encdec.unetplusplus(encoder="convnext_tiny")
    with pytest.raises(ValueError, match="decoder_channels needs 5 entries"):
        encdec.manet(encoder="resnet18", decoder_channels=(8, 8))
    with pytest.raises(ValueError, match="encoder_output_stride"):
        encdec.pan(encoder="resnet18", encoder_output_stride=8)
    with pytest.raises(encdec.InputSizeError, match="at least 128"):
        encdec.pan(encoder="resnet18")(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="encoder_depth must be 3, 4 or 5 for upernet"):
        encdec.upernet(encoder="resnet18", encoder_depth=2)
    with pytest.raises(ValueError, match="upsampling=4"):
        encdec.upernet(encoder="resnet18", upsampling=2)


# Mix Transformer encoders: encdec's own module, checked against smp's (the paper's Segformer, and smp's other
# decoders that take them).
MIT_CASES = [
    ("segformer", "Segformer", "mit_b0", {}),
    ("segformer", "Segformer", "mit_b0", {"encoder_depth": 3}),
    ("unet", "Unet", "mit_b0", {}),
    pytest.param("upernet", "UPerNet", "mit_b0", {}, marks=pytest.mark.slow),
    pytest.param("segformer", "Segformer", "mit_b2", {"decoder_segmentation_channels": 64}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("builder, cls_name, encoder, options", MIT_CASES)
def test_mix_transformer_checkpoints_reproduce_smps_outputs(builder, cls_name, encoder, options, tmp_path):
    torch.manual_seed(0)
    reference = getattr(smp, cls_name)(encoder, encoder_weights=None, classes=4, **options)
    _randomize(reference)
    torch.save(reference.state_dict(), tmp_path / "smp.pth")
    model = encdec.create_model(builder, encoder=encoder, num_classes=4, weights=tmp_path / "smp.pth", **options)
    assert _max_diff(model.eval(), reference.eval(), [(64, 96), (128, 128)]) <= 1e-5


def test_mix_transformer_encoder_file_loads_with_smps_maps_and_its_classifier_left_out(tmp_path):
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder("mit_b0", weights=None)
    state = dict(reference.state_dict(), **{"head.weight": torch.zeros(1000, 256), "head.bias": torch.zeros(1000)})
    torch.save(state, tmp_path / "mit_b0.pth")
    encoder = encdec.encoders.create_encoder("mit_b0", weights=tmp_path / "mit_b0.pth").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected, got = reference.eval()(x)[2:], encoder(x)  # smp adds the input and an empty stride-2 map
    assert [tuple(m.shape[1:]) for m in got] == [(32, 16, 24), (64, 8, 12), (160, 4, 6), (256, 2, 3)]
    assert max((a - b).abs().max().item() for a, b in zip(expected, got)) <= 1e-5
    del state["block1.0.attn.q.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(encdec.WeightsError, match="block1.0.attn.q.weight"):
        encdec.encoders.create_encoder("mit_b0", weights=tmp_path / "broken.pth")


def test_segformer_folder_loads_through_from_pretrained(tmp_path):
    torch.manual_seed(0)
    reference = smp.Segformer("mit_b0", encoder_weights=None, classes=3)
    _randomize(reference)
    reference.save_pretrained(str(tmp_path / "folder"))
    model = encdec.from_pretrained(tmp_path / "folder")
    assert model.encdec_config["architecture"] == "segformer"
    assert _max_diff(model.eval(), reference.eval(), [(64, 64)], batch=1) <= 1e-5


def test_mix_transformer_refusals_name_what_would_work():
    with pytest.raises(encdec.encoders.EncoderError, match="cannot run dilated"):
        encdec.deeplabv3plus(encoder="mit_b0")
    with pytest.raises(encdec.encoders.EncoderError, match="mit_b0, mit_b1"):
        encdec.encoders.MixTransformerEncoder("mit_b9")
    with pytest.raises(ValueError, match="encoder_depth must be 3, 4 or 5 for segformer"):
        encdec.segformer(encoder="mit_b0", encoder_depth=2)


# DPT reads a timm Vision Transformer's blocks (smp builds it with dynamic_img_size to take two sizes).
DPT_CASES = [
    ("vit_tiny_patch16_224", {}),
    ("vit_tiny_patch16_224", {"decoder_readout": "ignore", "encoder_depth": 3,
                              "decoder_intermediate_channels": (64, 64, 128)}),
    pytest.param("vit_tiny_patch16_224", {"decoder_readout": "add"}, marks=pytest.mark.slow),
    pytest.param("deit_small_patch16_224", {"decoder_fusion_channels": 64}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("encoder, options", DPT_CASES)
def test_dpt_checkpoints_reproduce_smps_outputs(encoder, options, tmp_path):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = smp.DPT(f"tu-{encoder}", encoder_weights=None, classes=4, dynamic_img_size=True, **options)
    _randomize(reference)
    torch.save(reference.state_dict(), tmp_path / "smp.pth")
    model = encdec.dpt(encoder=f"timm:{encoder}", num_classes=4, weights=tmp_path / "smp.pth", **options)
    assert _max_diff(model.eval(), reference.eval(), [(224, 224), (64, 96)]) <= 1e-5


def test_dpt_loads_a_fixed_size_smp_file_and_folder_and_takes_other_sizes(tmp_path):
    pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = smp.DPT("tu-vit_tiny_patch16_224", encoder_weights=None, classes=3)  # timm's fixed 224x224
    _randomize(reference)
    reference.save_pretrained(str(tmp_path / "folder"))
    model = encdec.from_pretrained(tmp_path / "folder").eval()
    assert model.encdec_config["architecture"] == "dpt"
    assert _max_diff(model, reference.eval(), [(224, 224)], batch=1) <= 1e-5
    assert model(torch.zeros(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    with pytest.raises(encdec.InputSizeError, match="divisible by 32"):
        model(torch.zeros(1, 3, 48, 48))


def test_dpt_refusals_name_what_would_work():
    pytest.importorskip("timm")
    with pytest.raises(encdec.encoders.EncoderError, match="encoder='timm:NAME'"):
        encdec.dpt(encoder="resnet34")
    with pytest.raises(ValueError, match="decoder_readout must be one of cat, add, ignore"):
        encdec.dpt(encoder="timm:vit_tiny_patch16_224", decoder_readout="mean")
    with pytest.raises(encdec.encoders.EncoderError, match="output_indices must be 4 block indices"):
        encdec.dpt(encoder="timm:vit_tiny_patch16_224", encoder_output_indices=[0, 1, 2, 40])
