"""encdec.losses against segmentation_models_pytorch's losses as the oracle: the same values (within 1e-6) and
gradients (within 1e-5) on 50 random cases per loss and mode (random shapes, ignored pixels, empty classes), with
the arguments that give smp's conventions; the conventions that differ are asserted one by one.

``python tests/test_losses_smp.py`` prints the largest differences of each loss and mode.
"""

from __future__ import annotations

import math
import random
from typing import Callable, Dict, Optional, Tuple

import pytest
import torch

from encdec import losses as L

smp = pytest.importorskip("segmentation_models_pytorch")
from segmentation_models_pytorch.losses import _functional as smp_functional  # noqa: E402

CASES = 50
IGNORE = 255


class Case:
    """Random logits and targets of one mode: 1-3 images, 3-10 pixels a side, 2-5 classes, empty classes, and
    ignored pixels in about half the cases."""

    def __init__(self, mode: str, seed: int, dtype: torch.dtype) -> None:
        r = random.Random(seed)
        g = torch.Generator().manual_seed(seed)
        n, h, w = r.randint(1, 3), r.randint(3, 10), r.randint(3, 10)
        c = 1 if mode == "binary" else r.randint(2, 5)
        self.mode, self.c = mode, c
        self.logits = (torch.randn(n, c, h, w, generator=g) * r.uniform(0.5, 4.0)).to(dtype)
        self.ignore: Optional[int] = IGNORE if r.random() < 0.5 else None
        if mode == "multiclass":
            used = r.sample(range(c), r.randint(1, c))  # the classes left out are empty
            target = torch.tensor(used)[torch.randint(0, len(used), (n, h, w), generator=g)]
        else:
            shape = (n, c, h, w) if mode == "multilabel" else (n, h, w)
            rate = torch.tensor([r.choice([0.0, 0.1, 0.5, 0.9]) for _ in range(c if mode == "multilabel" else 1)])
            rate = rate.reshape(-1, 1, 1) if mode == "multilabel" else rate
            target = (torch.rand(shape, generator=g) < rate).long()
        if self.ignore is not None:
            target[torch.rand(target.shape, generator=g) < r.uniform(0.05, 0.4)] = IGNORE
            target.view(-1)[0] = 0 if mode == "multiclass" else target.view(-1)[0] % 2  # one pixel always counts
        if mode == "binary" and r.random() < 0.5:
            target = target[:, None]  # (N, 1, H, W) is a binary target too
        self.target = target
        self.smooth = r.choice([0.0, 0.0, 0.5, 1.0])
        self.alpha, self.beta, self.gamma = r.uniform(0.1, 0.9), r.uniform(0.1, 0.9), r.choice([1.0, 2.0, 0.75])
        self.focal_alpha = r.choice([None, 0.25, 0.6])
        self.smooth_factor = r.choice([None, 0.05, 0.1])
        self.pos_weight = None if r.random() < 0.5 else [r.uniform(0.5, 3.0) for _ in range(c)]
        self.per_image = r.random() < 0.5

    @property
    def valid_fraction(self) -> float:
        return 1.0 if self.ignore is None else float((self.target != self.ignore).double().mean())

    def onehot_target(self) -> torch.Tensor:
        """Multiclass labels as one-hot (N, C, H, W), ``IGNORE`` in every channel of an ignored pixel."""
        labels = self.target.clamp_max(self.c - 1)
        onehot = torch.nn.functional.one_hot(labels, self.c).movedim(-1, 1)
        if self.ignore is not None:
            onehot[(self.target == self.ignore).unsqueeze(1).expand_as(onehot)] = IGNORE
        return onehot


def _value_and_grad(fn: Callable[[torch.Tensor], torch.Tensor], logits: torch.Tensor) -> Tuple[float, torch.Tensor]:
    x = logits.clone().requires_grad_(True)
    value = fn(x)
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad


def _f32(x: torch.Tensor) -> torch.Tensor:
    """smp's Lovasz losses compute their weights in float32 whatever the input (float64 inputs fail)."""
    return x.float()


def _smp_bce(case: Case, target: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """smp's SoftBCEWithLogitsLoss rescaled to a mean over the kept values (smp divides by every value)."""
    pos = None if case.pos_weight is None else torch.tensor(case.pos_weight, dtype=x.dtype).reshape(-1, 1, 1)
    loss = smp.losses.SoftBCEWithLogitsLoss(ignore_index=case.ignore, smooth_factor=case.smooth_factor,
                                            pos_weight=pos)
    kept = 1.0 if case.ignore is None else float((target != case.ignore).double().mean())
    return loss(x, target.to(x.dtype)) / kept


def _smp_focal_multilabel(case: Case, x: torch.Tensor) -> torch.Tensor:
    """smp's per-class focal loss over the kept values of each class (its FocalLoss fails on multilabel
    ignore_index, so its functional form is applied class by class as FocalLoss does)."""
    per_class = []
    for k in range(case.c):
        t, logit = case.target[:, k], x[:, k]
        keep = torch.ones_like(t, dtype=torch.bool) if case.ignore is None else t != case.ignore
        if not bool(keep.any()):
            per_class.append(logit.sum() * 0.0)
            continue
        per_class.append(smp_functional.focal_loss_with_logits(logit[keep], t[keep], gamma=2.0,
                                                               alpha=case.focal_alpha, reduction="mean"))
    return torch.stack(per_class).mean()


def _smp_softmax_focal(case: Case, x: torch.Tensor) -> torch.Tensor:
    keep = torch.ones_like(case.target, dtype=torch.bool) if case.ignore is None else case.target != case.ignore
    per_pixel = smp_functional.softmax_focal_loss_with_logits(x, case.target.clamp_max(case.c - 1), gamma=2.0,
                                                              reduction="none")
    return per_pixel[keep].mean()


def _pairs(case: Case) -> Dict[str, Tuple[Callable, Callable]]:
    """loss name -> (encdec's loss of the logits, the oracle's), with the arguments that give smp's conventions."""
    m, ig, s = case.mode, case.ignore, case.smooth
    binary_target = case.target if case.target.dim() == 4 or m != "binary" else case.target[:, None]
    pairs = {
        "dice": (lambda x: L.dice_loss(x, case.target, ig, 2 * s, mode=m, empty="zero"),
                 lambda x: smp.losses.DiceLoss(m, smooth=s, ignore_index=ig)(x, case.target)),
        "jaccard": (lambda x: L.jaccard_loss(x, case.target, mode=m, ignore_index=ig, smooth=s, empty="zero"),
                    lambda x: smp.losses.JaccardLoss(m, smooth=s, ignore_index=ig)(x, case.target)),
        "tversky": (lambda x: L.tversky_loss(x, case.target, mode=m, alpha=case.alpha, beta=case.beta,
                                             gamma=case.gamma, ignore_index=ig, smooth=s, empty="zero"),
                    lambda x: smp.losses.TverskyLoss(m, smooth=s, ignore_index=ig, alpha=case.alpha, beta=case.beta,
                                                     gamma=case.gamma)(x, case.target)),
    }
    if m == "multilabel":
        pairs["focal"] = (lambda x: L.focal_loss(x, case.target, mode=m, alpha=case.focal_alpha, ignore_index=ig),
                          lambda x: _smp_focal_multilabel(case, x))
        pairs["lovasz"] = (  # one hinge per label, averaged: smp's binary loss on each label
            lambda x: L.lovasz_loss(x, case.target, mode=m, ignore_index=ig, per_image=case.per_image),
            lambda x: torch.stack([smp.losses.LovaszLoss("binary", per_image=case.per_image, ignore_index=ig)(
                _f32(x)[:, k:k + 1], case.target[:, k]) for k in range(case.c)]).mean())
    else:
        pairs["focal"] = (lambda x: L.focal_loss(x, case.target, mode=m, ignore_index=ig, softmax=False,
                                                 alpha=case.focal_alpha),
                          lambda x: smp.losses.FocalLoss(m, ignore_index=ig, alpha=case.focal_alpha)(x, case.target))
        smp_lovasz = smp.losses.LovaszLoss(m, per_image=case.per_image, ignore_index=ig)
        pairs["lovasz"] = (lambda x: L.lovasz_loss(x, case.target, mode=m, ignore_index=ig, per_image=case.per_image),
                           lambda x: smp_lovasz(_f32(x), case.target))
    if m == "multiclass":
        pairs["focal_softmax"] = (lambda x: L.focal_loss(x, case.target, mode=m, ignore_index=ig),
                                  lambda x: _smp_softmax_focal(case, x))
        onehot = case.onehot_target()
        oracle_target, oracle_mode = onehot, "multilabel"
    else:
        oracle_target, oracle_mode = binary_target, m
    bce_args = dict(ignore_index=ig, smooth_factor=case.smooth_factor, pos_weight=case.pos_weight)
    pairs["bce"] = (lambda x: L.soft_bce_loss(x, case.target, mode=m, **bce_args),
                    lambda x: _smp_bce(case, oracle_target, x))
    pairs["bce_dice"] = (
        lambda x: L.bce_dice_loss(x, case.target, mode=m, smooth=2 * s, empty="zero", **bce_args),
        lambda x: _smp_bce(case, oracle_target, x)
        + smp.losses.DiceLoss(oracle_mode, smooth=s, ignore_index=ig)(x, oracle_target))
    return pairs


def sweep(dtype: torch.dtype = torch.float64, modes: Tuple[str, ...] = ("binary", "multiclass", "multilabel"),
          cases: int = CASES) -> Dict[Tuple[str, str], Tuple[float, float, float]]:
    """(loss, mode) -> the largest value difference, the same divided by ``max(1, |smp's value|)``, and the largest
    gradient difference, over ``cases`` random cases."""
    worst: Dict[Tuple[str, str], Tuple[float, float, float]] = {}
    for mode in modes:
        for seed in range(cases):
            case = Case(mode, seed, dtype)
            for name, (ours, oracle) in _pairs(case).items():
                v1, g1 = _value_and_grad(ours, case.logits)
                v2, g2 = _value_and_grad(oracle, case.logits)
                assert math.isfinite(v1) and math.isfinite(v2), (name, mode, seed, v1, v2)
                dv, dg = abs(v1 - v2), float((g1 - g2).abs().max())
                old = worst.get((name, mode), (0.0, 0.0, 0.0))
                worst[(name, mode)] = (max(old[0], dv), max(old[1], dv / max(1.0, abs(v2))), max(old[2], dg))
    return worst


@pytest.mark.parametrize("mode", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_every_loss_and_mode_equals_smp(dtype, mode):
    """Values within 1e-6 (relative to the value where it exceeds 1: Lovasz hinge losses reach 10, and smp computes
    the Lovasz weights in float32) and gradients within 1e-5."""
    worst = sweep(dtype, (mode,))
    assert len(worst) == 7 + (mode == "multiclass")
    bad = {k: v for k, v in worst.items() if v[1] > 1e-6 or v[2] > 1e-5}
    assert not bad, bad


# ---- the conventions that differ from smp, one by one -------------------------------------------------------


def _binary_case(seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 1, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 2, (2, 6, 6), generator=g)


def test_dice_smoothing_is_added_to_two_tp_and_defaults_score_empty_classes():
    x, y = _binary_case()
    for s in (0.5, 1.0, 3.0):  # smp's smooth=s is encdec's smooth=2s
        assert float(L.dice_loss(x, y, mode="binary", smooth=2 * s)) == pytest.approx(
            float(smp.losses.DiceLoss("binary", smooth=s)(x, y)), abs=1e-12)
    logits = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    no_class_2 = torch.randint(0, 2, (1, 4, 4))
    ours, theirs = L.DiceLoss()(logits, no_class_2), smp.losses.DiceLoss("multiclass")(logits, no_class_2)
    assert abs(float(ours) - float(theirs)) > 1e-3  # smooth=1 and absent classes scored (smp: smooth=0, zero)
    assert float(L.dice_loss(logits, no_class_2, smooth=0.0, empty="zero")) == pytest.approx(float(theirs), abs=1e-12)


def test_tversky_defaults_are_the_papers_pair_and_smps_are_dice():
    x, y = _binary_case(1)
    assert L.TverskyLoss().alpha == 0.3 and L.TverskyLoss().beta == 0.7
    smp_default = smp.losses.TverskyLoss("binary")(x, y)
    assert float(L.tversky_loss(x, y, mode="binary", alpha=0.5, beta=0.5, smooth=0.0, empty="zero")) == \
        pytest.approx(float(smp_default), abs=1e-12)
    assert float(L.dice_loss(x, y, mode="binary", smooth=0.0, empty="zero")) == pytest.approx(float(smp_default))


def test_bce_mean_leaves_ignored_values_out_where_smp_counts_them():
    x, y = _binary_case(2)
    y[0, :3] = IGNORE
    kept = float((y != IGNORE).double().mean())
    ours = L.soft_bce_loss(x, y, ignore_index=IGNORE)
    theirs = smp.losses.SoftBCEWithLogitsLoss(ignore_index=IGNORE)(x, y[:, None].double())
    assert float(ours) * kept == pytest.approx(float(theirs), abs=1e-12)
    assert float(ours) != pytest.approx(float(theirs), abs=1e-3)


def test_everything_ignored_gives_zero_where_smp_focal_gives_nan():
    x, _ = _binary_case(3)
    y = torch.full((2, 6, 6), IGNORE)
    assert math.isnan(float(smp.losses.FocalLoss("binary", ignore_index=IGNORE)(x, y)))
    for loss in (L.focal_loss(x, y, mode="binary", ignore_index=IGNORE),
                 L.soft_bce_loss(x, y, ignore_index=IGNORE), L.lovasz_loss(x, y, mode="binary", ignore_index=IGNORE)):
        assert float(loss) == 0.0


def test_multiclass_focal_is_the_softmax_form_by_default():
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(2, 4, 5, 5, generator=g, dtype=torch.float64), torch.randint(0, 4, (2, 5, 5), generator=g)
    smp_multiclass = float(smp.losses.FocalLoss("multiclass")(x, y))  # one sigmoid per class against the rest
    assert float(L.focal_loss(x, y, softmax=False)) == pytest.approx(smp_multiclass, abs=1e-12)
    assert float(L.focal_loss(x, y)) != pytest.approx(smp_multiclass, abs=1e-3)
    assert float(L.focal_loss(x, y, gamma=0.0)) == pytest.approx(float(torch.nn.functional.cross_entropy(x, y)))


def test_multilabel_lovasz_averages_labels_where_smp_pools_them():
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(2, 3, 5, 5, generator=g), torch.randint(0, 2, (2, 3, 5, 5), generator=g)
    pooled = float(smp.losses.LovaszLoss("multilabel")(x, y))
    assert float(L.lovasz_loss(x.reshape(1, 1, -1), y.reshape(1, -1), mode="binary")) == pytest.approx(pooled)
    assert float(L.lovasz_loss(x, y, mode="multilabel")) != pytest.approx(pooled, abs=1e-4)


def test_lovasz_honours_from_logits_which_smp_ignores():
    g = torch.Generator().manual_seed(6)
    x, y = torch.randn(2, 3, 5, 5, generator=g), torch.randint(0, 3, (2, 5, 5), generator=g)
    theirs = float(smp.losses.LovaszLoss("multiclass")(x, y))
    assert float(L.lovasz_loss(x.softmax(1), y, from_logits=False)) == pytest.approx(theirs, abs=1e-6)
    assert float(smp.losses.LovaszLoss("multiclass", from_logits=False)(x.softmax(1), y)) != pytest.approx(theirs)


if __name__ == "__main__":
    for dtype in (torch.float64, torch.float32):
        print(f"{dtype}: largest |encdec - smp| over {CASES} random cases per mode")
        print(f"  {'loss':<14}{'mode':<12}{'value':>10}{'relative':>10}{'gradient':>10}")
        for (name, mode), (dv, rv, dg) in sorted(sweep(dtype).items()):
            print(f"  {name:<14}{mode:<12}{dv:>10.1e}{rv:>10.1e}{dg:>10.1e}")
