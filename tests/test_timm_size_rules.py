"""timm encoders say the input sizes they really take: fixed-size ViT-like models are built to size dynamically
where timm can, the others take their one size (predict resizes to it), and an encoder whose maps never match
their strides is refused when it is built. Checked against timm itself (skipped without it)."""

from __future__ import annotations

import pytest
import torch

import encdec
from encdec.encoders import EncoderError, create_encoder

timm = pytest.importorskip("timm")


def test_a_fixed_size_vit_like_encoder_takes_two_sizes_with_timms_maps():
    encoder = create_encoder("timm:swin_tiny_patch4_window7_224").eval()
    assert encoder.fixed_size is None and encoder.size_multiple == 32
    reference = timm.create_model("swin_tiny_patch4_window7_224", features_only=True, dynamic_img_size=True).eval()
    reference.load_state_dict(encoder.model.state_dict())
    for side in (64, 96):  # timm's fixed-size model refuses both
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            ours, theirs = encoder(x), reference(x)
        assert [tuple(m.shape[-2:]) for m in ours] == [(side // s, side // s) for s in encoder.strides]
        assert all(torch.equal(a, b.permute(0, 3, 1, 2)) for a, b in zip(ours, theirs))
    model = encdec.unet(encoder="timm:swin_tiny_patch4_window7_224", num_classes=2,
                        decoder_channels=(32, 16, 8, 8, 8))
    assert model.input_spec.rule() == "height and width divisible by 32"


@pytest.mark.slow
def test_a_model_timm_fixes_to_one_size_says_so_and_predict_resizes_to_it():
    model = encdec.unet(encoder="timm:efficientformer_l1", num_classes=2, decoder_channels=(32, 16, 8, 8, 8))
    assert model.input_spec.rule() == "exactly 224x224"
    with pytest.raises(encdec.InputSizeError, match="224"):
        model.eval()(torch.zeros(1, 3, 64, 64))
    labels = encdec.predict(model, torch.rand(3, 100, 130), precision="fp32")
    assert labels.shape == (100, 130)


def test_an_encoder_whose_maps_never_match_their_strides_is_refused_when_built():
    with pytest.raises(EncoderError, match="inception_v3' gives maps that are not the input size divided by"):
        encdec.unet(encoder="timm:inception_v3", num_classes=2)
