"""encdec.losses: soft Dice against a NumPy restatement, ignore handling, gradients, the CE combination."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from encdec.losses import DiceCELoss, DiceLoss, dice_ce, dice_loss


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
