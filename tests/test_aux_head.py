"""smp's auxiliary classification head (``aux_params``): built by every encoder builder with smp's names and
outputs (checked against smp itself), refused by name where its values are not smp's, and trained by ``fit`` when
asked (``aux_loss_weight``), held still when not."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader

import encdec
from encdec.datasets import SyntheticShapes
from encdec.training.auxiliary import AuxiliaryHead

smp = pytest.importorskip("segmentation_models_pytorch")
from test_smp_decoders import _randomize  # noqa: E402  (after the skip: it needs smp too)

CASES = [
    ("Unet", "resnet18", {"classes": 4}),
    ("FPN", "resnet18", {"classes": 3, "pooling": "max", "dropout": 0.5, "activation": "sigmoid"}),
    ("DeepLabV3", "resnet18", {"classes": 2, "activation": "softmax"}),
    ("Segformer", "mit_b0", {"classes": 1}),
]


@pytest.mark.parametrize("cls_name, encoder, aux", CASES)
def test_smp_models_with_aux_params_give_smps_masks_and_labels(cls_name, encoder, aux, tmp_path):
    torch.manual_seed(0)
    reference = getattr(smp, cls_name)(encoder, encoder_weights=None, classes=3, aux_params=aux)
    _randomize(reference)
    reference.eval().save_pretrained(str(tmp_path / "folder"))
    model = encdec.from_pretrained(tmp_path / "folder").eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        masks, labels = reference(x)
        got_masks, got_labels = model.forward_with_labels(x)
        plain = model(x)
    assert got_labels.shape == labels.shape == (2, aux["classes"])
    assert (got_masks - masks).abs().max() <= 1e-5 and (got_labels - labels).abs().max() <= 1e-5
    assert torch.equal(plain, got_masks)  # forward alone returns the masks, as every segmentation model does
    # the same weights file into a builder given the same aux_params
    built = encdec.create_model(model.encdec_config["architecture"], encoder=encoder, num_classes=3, aux_params=aux,
                                weights=tmp_path / "folder" / "model.safetensors").eval()
    with torch.no_grad():
        assert (built.forward_with_labels(x)[1] - labels).abs().max() <= 1e-5


@pytest.mark.parametrize("aux, message", [
    ({"classes": 0}, "classes must be a positive whole number"),
    ({"classes": 2, "pooling": "min"}, "pooling must be 'avg' or 'max'"),
    ({"classes": 2, "dropout": 1.5}, r"dropout must be a probability in \[0, 1\)"),
    ({"classes": 2, "activation": "tanh"}, "activation='tanh' is not supported"),
    ({"classes": 2, "bias": False}, "unknown keys bias"),
    ({"pooling": "avg"}, "at least 'classes'"),
])
def test_bad_aux_params_are_refused_by_name(aux, message):
    with pytest.raises(ValueError, match=message):
        encdec.fpn(encoder="resnet18", aux_params=aux)


def test_the_course_unet_and_a_model_without_a_head_say_what_would_work():
    with pytest.raises(ValueError, match="aux_params=.*options of the U-Net on an encoder"):
        encdec.unet(aux_params={"classes": 2})
    with pytest.raises(ValueError, match="has no classification head"):
        encdec.fpn(encoder="resnet18").forward_with_labels(torch.zeros(1, 3, 64, 64))


def _presence(masks: torch.Tensor, classes: int, ignore_index) -> torch.Tensor:
    """Which classes each image holds, written out image by image."""
    rows = []
    for mask in masks:
        values = {int(v) for v in mask.flatten() if ignore_index is None or int(v) != ignore_index}
        if classes == 1:
            rows.append([float(any(v > 0 for v in values))])
        else:
            rows.append([float(c in values) for c in range(classes)])
    return torch.tensor(rows)


@pytest.mark.parametrize("classes, ignore_index", [(3, None), (3, 255), (1, 255)])
def test_the_heads_targets_are_the_classes_present_in_each_mask(classes, ignore_index):
    model = encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": classes})
    head = AuxiliaryHead.of(model, 0.5)
    masks = torch.randint(0, 3, (6, 8, 8))
    masks[0] = 0
    masks[1, :4] = 255
    masks[1, 4:] = 0
    masks[2] = 2
    assert torch.equal(head.targets(masks, ignore_index), _presence(masks, classes, ignore_index))


def _loader():
    return DataLoader(SyntheticShapes(n=8, size=64, num_classes=3, seed=1), batch_size=4)


def test_fit_trains_the_head_when_asked_and_holds_it_still_otherwise():
    torch.manual_seed(0)
    model = encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": 3})
    before = {k: v.clone() for k, v in model.classification_head.state_dict().items()}
    with pytest.warns(UserWarning, match="classification_head is not trained"):
        encdec.fit(model, _loader(), _loader(), epochs=1, progress=False, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.classification_head.state_dict().items())
    assert all(p.requires_grad for p in model.classification_head.parameters())  # trainable again after fit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encdec.fit(model, _loader(), _loader(), epochs=1, progress=False, seed=0, aux_loss_weight=0.4)
    assert not torch.equal(before["3.weight"], model.classification_head[3].weight)
    assert model.returns_labels is False  # forward returns the masks alone again


def test_fit_refuses_a_head_it_cannot_train_by_name():
    with pytest.raises(ValueError, match="the model has none"):
        encdec.fit(encdec.fpn(encoder="resnet18"), _loader(), epochs=1, progress=False, aux_loss_weight=0.4)
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        encdec.fit(encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": 3, "activation": "sigmoid"}),
                   _loader(), epochs=1, progress=False, aux_loss_weight=0.4)
    with pytest.raises(ValueError, match="this one has 5"):
        encdec.fit(encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": 5}), _loader(), epochs=1,
                   progress=False, aux_loss_weight=0.4)
    with pytest.raises(ValueError, match="aux_loss_weight must be a positive number"):
        encdec.fit(encdec.fpn(encoder="resnet18", num_classes=3, aux_params={"classes": 3}), _loader(), epochs=1,
                   progress=False, aux_loss_weight=-1)
