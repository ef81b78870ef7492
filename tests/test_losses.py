"""encdec.losses: soft Dice against a NumPy restatement, ignore handling, gradients, the CE combination; every loss's
modes, refusals and ignored pixels; every loss by name (the smp oracle is tests/test_losses_smp.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from encdec import losses as L
from encdec.losses import DiceCELoss, DiceLoss, dice_ce, dice_loss
from encdec.training.factories import LOSSES, make_loss


def ref_soft_dice_loss(logits: np.ndarray, target: np.ndarray, ignore=None, smooth=1.0, background=True) -> float:
    """1 - mean_c (2 sum p_c y_c + s) / (sum p_c + sum y_c + s) over non-ignored pixels, whole batch."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    keep = np.ones(target.shape, bool) if ignore is None else target != ignore
    scores = []
    for c in range(0 if background else 1, logits.shape[1]):
        pc = p[:, c][keep]
        yc = (target[keep] == c).astype(float)
        scores.append((2 * np.sum(pc * yc) + smooth) / (pc.sum() + yc.sum() + smooth))
    return 1.0 - float(np.mean(scores))


@pytest.mark.parametrize("ignore", [None, 255])
@pytest.mark.parametrize("background", [True, False])
def test_dice_loss_matches_the_definition(ignore, background):
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5, 6))
    target = rng.integers(0, 4, (2, 5, 6))
    if ignore is not None:
        target[rng.random(target.shape) < 0.2] = ignore
    got = DiceLoss(ignore_index=ignore, include_background=background)(
        torch.from_numpy(logits).float(), torch.from_numpy(target)
    )
    assert float(got) == pytest.approx(ref_soft_dice_loss(logits, target, ignore, 1.0, background), abs=1e-5)


def test_perfect_and_opposite_predictions():
    target = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(1))
    perfect = 30.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert float(dice_loss(perfect, target, smooth=0.0)) == pytest.approx(0.0, abs=1e-6)
    wrong = 30.0 * F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).float()
    assert float(dice_loss(wrong, target, smooth=0.0)) == pytest.approx(1.0, abs=1e-6)


def test_ignored_pixels_neither_count_nor_receive_gradient():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(1, 3, 4, 4, generator=g, requires_grad=True)
    target = torch.randint(0, 3, (1, 4, 4), generator=g)
    target[0, :2] = 255
    for fn in (lambda x: dice_loss(x, target, ignore_index=255), lambda x: dice_ce(x, target, ignore_index=255)):
        loss = fn(logits)
        loss.backward()
        assert torch.all(logits.grad[0, :, :2] == 0) and torch.any(logits.grad[0, :, 2:] != 0)
        changed = logits.detach().clone()
        changed[0, :, :2] = torch.randn(3, 2, 4, generator=g) * 10
        assert float(fn(changed)) == pytest.approx(float(loss.detach()), abs=1e-6)
        logits.grad = None


def test_single_channel_binary_logits_equal_two_channel_form():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 1, 5, 5, generator=g)
    target = torch.randint(0, 2, (2, 5, 5), generator=g)
    two = torch.cat([torch.zeros_like(x), x], dim=1)  # softmax([0, x]) = [1 - sigmoid(x), sigmoid(x)]
    assert float(dice_loss(x, target)) == pytest.approx(float(dice_loss(two, target)), abs=1e-6)
    assert float(dice_ce(x, target)) == pytest.approx(float(dice_ce(two, target)), abs=1e-5)


def test_dice_ce_is_the_weighted_sum():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 3, 4, 4, generator=g)
    target = torch.randint(0, 3, (2, 4, 4), generator=g)
    target[0, 0, 0] = 255
    want = 0.3 * F.cross_entropy(logits, target, ignore_index=255) + 0.7 * dice_loss(logits, target, 255)
    got = DiceCELoss(ignore_index=255, dice_weight=0.7, ce_weight=0.3)(logits, target)
    assert float(got) == pytest.approx(float(want), abs=1e-6)
    everything_ignored = torch.full_like(target, 255)
    assert torch.isfinite(dice_ce(logits, everything_ignored, ignore_index=255))


def test_bad_targets_raise_clear_errors():
    logits = torch.randn(1, 3, 2, 2)
    with pytest.raises(ValueError, match=r"target values \[7\] are outside \[0, 3\) or ignore_index=255"):
        dice_loss(logits, torch.tensor([[[0, 7], [255, 1]]]), ignore_index=255)
    with pytest.raises(ValueError, match="does not match logits"):
        dice_loss(logits, torch.zeros(1, 3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        dice_ce(logits, torch.zeros(1, 2, 2))


FUNCTIONS = {"dice": lambda x, y, **k: L.dice_loss(x, y, **k), "jaccard": L.jaccard_loss, "tversky": L.tversky_loss,
             "focal": L.focal_loss, "lovasz": L.lovasz_loss, "bce": L.soft_bce_loss, "bce_dice": L.bce_dice_loss}
MODE_SHAPES = {"binary": ((2, 1, 5, 6), (2, 5, 6), 2), "multiclass": ((2, 4, 5, 6), (2, 5, 6), 4),
               "multilabel": ((2, 3, 5, 6), (2, 3, 5, 6), 2)}


def _inputs(mode, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape, target_shape, high = MODE_SHAPES[mode]
    return torch.randn(shape, generator=g), torch.randint(0, high, target_shape, generator=g)


@pytest.mark.parametrize("mode", list(MODE_SHAPES))
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_ignored_pixels_count_nowhere_in_every_loss_and_mode(name, mode):
    logits, target = _inputs(mode, 7)
    target[0, ..., :2, :] = 255
    ignored = (target == 255) if mode == "multilabel" else (target == 255).unsqueeze(1).expand_as(logits)
    x = logits.clone().requires_grad_(True)
    loss = FUNCTIONS[name](x, target, mode=mode, ignore_index=255)
    loss.backward()
    assert torch.isfinite(loss) and torch.all(x.grad[ignored] == 0) and torch.any(x.grad[~ignored] != 0)
    changed = torch.where(ignored, torch.randn_like(logits) * 10, logits)
    again = FUNCTIONS[name](changed, target, mode=mode, ignore_index=255)
    assert float(again) == pytest.approx(float(loss.detach()), abs=1e-6)


@pytest.mark.parametrize("mode", list(MODE_SHAPES))
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_probabilities_give_what_logits_give(name, mode):
    logits, target = _inputs(mode, 8)
    one_vs_rest = mode != "multiclass" or name in ("bce", "bce_dice")  # sigmoid per channel, else softmax
    probs = logits.sigmoid() if one_vs_rest else logits.softmax(1)
    from_probs = FUNCTIONS[name](probs, target, mode=mode, from_logits=False)
    assert float(from_probs) == pytest.approx(float(FUNCTIONS[name](logits, target, mode=mode)), abs=1e-5)


def test_perfect_predictions_cost_nothing():
    target = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(9))
    perfect = 40.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).float() - 20.0
    for name in ("dice", "jaccard", "tversky", "focal", "lovasz"):
        value = float(FUNCTIONS[name](perfect, target, mode="multiclass", **({"smooth": 0.0} if name in (
            "dice", "jaccard", "tversky") else {})))
        assert value == pytest.approx(0.0, abs=1e-6), name
    labels = F.one_hot(target, 3).permute(0, 3, 1, 2)
    assert float(L.soft_bce_loss(perfect, labels, mode="multilabel")) < 1e-6
    assert float(L.lovasz_loss(perfect, labels, mode="multilabel")) == 0.0  # every margin at least 1


def test_one_channel_multiclass_is_binary():
    x, y = _inputs("binary", 10)
    for name in ("bce", "bce_dice"):
        assert float(FUNCTIONS[name](x, y, mode="multiclass")) == pytest.approx(float(FUNCTIONS[name](x, y)), abs=1e-6)
    assert float(L.dice_loss(x, y, include_background=False)) == pytest.approx(
        float(L.dice_loss(x, y, mode="binary")), abs=1e-6)
    assert float(L.focal_loss(x, y, softmax=False)) == pytest.approx(float(L.focal_loss(x, y, mode="binary")))


def test_empty_classes_scored_zeroed_or_dropped():
    logits = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(11))
    target = torch.randint(0, 2, (1, 4, 4), generator=torch.Generator().manual_seed(12))  # class 2 absent
    scored, zero, drop = (float(L.dice_loss(logits, target, smooth=0.0, empty=e)) for e in ("score", "zero", "drop"))
    assert zero == pytest.approx(drop * 2 / 3) and scored > zero
    everything_empty = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    assert float(L.jaccard_loss(logits[:, :2], everything_empty, mode="multilabel", empty="drop")) == 0.0


def test_tversky_weighs_misses_and_false_alarms_as_asked():
    target = torch.tensor([[[0, 1], [1, 1]]])
    missed = torch.tensor([[[[-20.0, 20.0], [20.0, -20.0]]]])
    extra = torch.full((1, 1, 2, 2), 20.0)
    miss, alarm = (float(L.tversky_loss(x, target, mode="binary", smooth=0.0)) for x in (missed, extra))
    assert miss == pytest.approx(1 - 2 / (2 + 0.7)) and alarm == pytest.approx(1 - 3 / (3 + 0.3))
    assert float(L.tversky_loss(missed, target, mode="binary", alpha=1, beta=1, smooth=0.0)) == pytest.approx(
        float(L.jaccard_loss(missed, target, mode="binary", smooth=0.0)))


def test_half_precision_logits_give_a_float32_loss():
    x, y = _inputs("multilabel", 13)
    for name, fn in FUNCTIONS.items():
        assert fn(x.to(torch.bfloat16), y, mode="multilabel").dtype == torch.float32, name


def test_targets_a_mode_does_not_allow_are_refused_by_name():
    x1, x3 = torch.randn(2, 1, 4, 4), torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="mode 'binray' is not one of 'binary', 'multiclass', 'multilabel'"):
        L.FocalLoss("binray")
    with pytest.raises(ValueError, match="mode 'softmax' is not one of"):
        L.jaccard_loss(x3, torch.zeros(2, 4, 4, dtype=torch.long), mode="softmax")
    with pytest.raises(ValueError, match=r"binary mode takes one output channel \(N, 1, ...\)"):
        L.lovasz_loss(x3, torch.zeros(2, 4, 4), mode="binary")
    with pytest.raises(ValueError, match=r"target values \[255\] are not 0 or 1; 0/255 masks: divide by 255"):
        L.DiceLoss("binary")(x1, torch.full((2, 4, 4), 255))
    with pytest.raises(ValueError, match=r"multilabel mode: target values \[0.5\] are not 0 or 1"):
        L.soft_bce_loss(x3, torch.full((2, 3, 4, 4), 0.5), mode="multilabel")
    with pytest.raises(ValueError, match=r"multilabel mode: target shape \(2, 4, 4\) does not match logits"):
        L.TverskyLoss("multilabel")(x3, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"target values \[3\] are outside \[0, 3\)"):
        L.LovaszLoss()(x3, torch.full((2, 4, 4), 3))
    with pytest.raises(TypeError, match="integer class labels in multiclass mode"):
        L.focal_loss(x3, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="include_background=False is for multiclass mode"):
        L.dice_loss(x1, torch.zeros(2, 4, 4), include_background=False, mode="binary")
    with pytest.raises(ValueError, match="alpha weighs positives"):
        L.FocalLoss(alpha=0.25)
    with pytest.raises(ValueError, match="pos_weight has 2 values for 3 channels"):
        L.soft_bce_loss(x3, torch.zeros(2, 3, 4, 4), mode="multilabel", pos_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="empty='none' is not one of"):
        L.jaccard_loss(x3, torch.zeros(2, 4, 4, dtype=torch.long), empty="none")
    assert float(L.DiceLoss("binary")(x1, torch.randint(0, 2, (2, 1, 4, 4)).bool())) >= 0  # bool masks are 0/1


def test_every_loss_by_name_for_every_mode():
    for mode in MODE_SHAPES:
        x, y = _inputs(mode, 14)
        for name in LOSSES:
            if name in ("ce", "dice_ce") and mode != "multiclass":
                with pytest.raises(ValueError, match="bce"):
                    make_loss(name, mode=mode)
                continue
            loss = make_loss(name, ignore_index=255, mode=mode)
            if loss is None:
                assert name == "ce"
                continue
            assert torch.isfinite(loss(x, y)), (name, mode)
    with pytest.raises(ValueError, match="mode 'binray' is not one of"):
        make_loss("dice", mode="binray")
    with pytest.raises(ValueError, match="loss 'iou' is not one of"):
        make_loss("iou")
