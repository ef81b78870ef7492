"""encdec.metrics against plain NumPy restatements of the textbook definitions.

The references below never build a confusion matrix: each score is computed from boolean pixel sets
(``|A and B|``, ``|A or B|``) the way the definitions are written, so an error in the shared confusion-matrix
code cannot hide in both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from encdec import metrics as M

try:
    from tests.fixtures.distributed import run_gloo
except ImportError:  # pragma: no cover - tests/ on sys.path instead of a package
    from fixtures.distributed import run_gloo


# ---------------------------------------------------------------------------------------------------------------
# textbook references
# ---------------------------------------------------------------------------------------------------------------
def ref_scores(pred: np.ndarray, target: np.ndarray, c: int, ignore=None, zero_division=math.nan) -> dict:
    keep = np.ones(target.shape, bool) if ignore is None else target != ignore
    p, t = pred[keep], target[keep]
    dropped = ignore if ignore is not None and 0 <= ignore < c else None
    iou, dice, recall, freq = [], [], [], []
    for k in range(c):
        a, b = t == k, p == k
        inter, union = np.sum(a & b), np.sum(a | b)
        iou.append(inter / union if union else zero_division)
        dice.append(2 * inter / (a.sum() + b.sum()) if a.sum() + b.sum() else zero_division)
        recall.append(inter / a.sum() if a.sum() else zero_division)
        freq.append(a.sum() / t.size if t.size else 0.0)
        if k == dropped:
            iou[-1] = dice[-1] = recall[-1] = math.nan
    iou, dice, recall = np.array(iou, float), np.array(dice, float), np.array(recall, float)

    def nanmean(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else math.nan

    return {
        "pixel_accuracy": float(np.mean(p == t)) if t.size else math.nan,
        "mean_accuracy": nanmean(recall),
        "miou": nanmean(iou),
        "fwiou": float(sum(f * (0.0 if math.isnan(v) else v) for f, v in zip(freq, iou))) if t.size else math.nan,
        "dice": float(dice[1]) if c == 2 and dropped != 1 else nanmean(dice),
        "iou": iou,
        "dice_per_class": dice,
    }


def assert_scores_match(got: dict, want: dict) -> None:
    for key in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou", "dice"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    for key in ("iou", "dice_per_class"):
        np.testing.assert_allclose(np.array(got[key], float), want[key], rtol=1e-12, atol=1e-12, err_msg=key)


def random_case(rng: np.random.Generator, c: int, ignore):
    """Labels with some classes absent from the target, one absent from both, and ignore pixels."""
    shape = (int(rng.integers(1, 4)), int(rng.integers(3, 17)), int(rng.integers(3, 17)))
    present = rng.choice(c, size=max(1, c - 2), replace=False)
    target = rng.choice(present, size=shape)
    pred = rng.integers(0, max(1, c - 1), size=shape)  # class c-1 never predicted
    if ignore is not None:
        target = np.where(rng.random(shape) < 0.15, ignore, target)
    return pred, target


# ---------------------------------------------------------------------------------------------------------------
# segmentation
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ignore", [None, 255, -1, 0])
@pytest.mark.parametrize("c", [2, 3, 6])
def test_random_cases_match_textbook(c, ignore):
    rng = np.random.default_rng(c * 1000 + (ignore or 7))
    for _ in range(8):
        pred, target = random_case(rng, c, ignore)
        m = M.SegmentationMetrics(c, ignore_index=ignore)
        m.update(torch.from_numpy(pred), torch.from_numpy(target))
        assert_scores_match(m.compute(), ref_scores(pred, target, c, ignore))


def test_zero_division_argument_counts_absent_classes():
    rng = np.random.default_rng(3)
    pred, target = random_case(rng, 5, 255)
    for zd in (0.0, 1.0):
        m = M.SegmentationMetrics(5, ignore_index=255, zero_division=zd)
        m.update(torch.from_numpy(pred), torch.from_numpy(target))
        got = m.compute()
        assert_scores_match(got, ref_scores(pred, target, 5, 255, zero_division=zd))
        assert not any(math.isnan(v) for v in got["iou"])


def test_hand_computed_case_with_ignore_255():
    target = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 1]]], dtype=torch.uint8)
    pred = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 1]]])
    m = M.SegmentationMetrics(3, ignore_index=255)
    m.update(pred, target)
    s = m.compute()
    assert m.confusion_matrix.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)
    assert s["mean_accuracy"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert s["iou"] == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert s["miou"] == pytest.approx(19 / 36)
    assert s["fwiou"] == pytest.approx(47 / 84)
    assert s["dice_per_class"] == pytest.approx([1 / 2, 6 / 7, 2 / 3])
    assert s["dice"] == pytest.approx((1 / 2 + 6 / 7 + 2 / 3) / 3)


def test_binary_dice_is_foreground_dice_not_intersection_over_all_pixels():
    # |A and B| = 2, |A| = |B| = 3 -> Dice 2/3; the seed's 2|A and B| / (all pixels) would give 0.5
    target = torch.tensor([0, 1, 1, 1, 0, 0, 0, 0])
    pred = torch.tensor([0, 1, 1, 0, 0, 0, 0, 1])
    assert float(M.dice(pred, target, 2)) == pytest.approx(2 / 3)
    m = M.SegmentationMetrics(2)
    m.update(pred, target)
    assert m.compute()["dice"] == pytest.approx(2 / 3)


def test_pixel_accuracy_excludes_ignored_pixels():
    target = torch.tensor([[0, 1, 255, 255]])
    pred = torch.tensor([[0, 1, 0, 0]])
    assert float(M.pixel_accuracy(pred, target, 2, ignore_index=255)) == 1.0


def test_ignore_index_inside_the_class_range_drops_that_class():
    # VOC with boundary="class": 22 outputs, class 21 ignored as in the seed's CrossEntropyLoss(ignore_index=21)
    target = torch.tensor([[0, 1, 21, 21]])
    pred = torch.tensor([[0, 21, 21, 0]])
    s = M.segmentation_scores(M.confusion_matrix(pred, target, 22, ignore_index=21), ignore_index=21)
    assert math.isnan(s["iou"][21])
    assert s["pixel_accuracy"] == 0.5
    assert s["iou"][0] == 1.0 and s["iou"][1] == 0.0
    assert s["miou"] == 0.5  # classes 2..20 absent (NaN), 21 dropped


def test_logits_are_argmaxed_and_binary_single_channel_thresholded():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, generator=g)
    target = torch.randint(0, 4, (2, 5, 6), generator=g)
    a, b = M.SegmentationMetrics(4), M.SegmentationMetrics(4)
    a.update(logits, target)
    b.update(logits.argmax(1), target)
    assert torch.equal(a.confusion_matrix, b.confusion_matrix)
    single = torch.randn(2, 1, 5, 6, generator=g)
    t2 = torch.randint(0, 2, (2, 5, 6), generator=g)
    assert torch.equal(M.confusion_matrix(single, t2, 2), M.confusion_matrix((single[:, 0] > 0).long(), t2, 2))


def test_accumulation_over_batches_equals_one_pass_and_reset():
    rng = np.random.default_rng(11)
    preds, targets = zip(*(random_case(rng, 4, 255) for _ in range(5)))
    m = M.SegmentationMetrics(4, ignore_index=255)
    for p, t in zip(preds, targets):
        m.update(torch.from_numpy(p), torch.from_numpy(t))
    flat_p = np.concatenate([p.ravel() for p in preds])
    flat_t = np.concatenate([t.ravel() for t in targets])
    assert_scores_match(m.compute(), ref_scores(flat_p, flat_t, 4, 255))
    m.reset()
    assert int(m.confusion_matrix.sum()) == 0
    assert math.isnan(m.compute()["pixel_accuracy"])


@pytest.mark.parametrize("ignore", [None, 255, 0])
def test_functional_forms_match_the_textbook(ignore):
    """Each functional form against the set-based restatement (not against the accumulator, which shares code)."""
    rng = np.random.default_rng(5)
    for _ in range(4):
        pred, target = random_case(rng, 5, ignore)
        want = ref_scores(pred, target, 5, ignore)
        p, t = torch.from_numpy(pred), torch.from_numpy(target)
        kw = {"num_classes": 5, "ignore_index": ignore}
        np.testing.assert_allclose(float(M.pixel_accuracy(p, t, **kw)), want["pixel_accuracy"], rtol=1e-12)
        np.testing.assert_allclose(float(M.mean_accuracy(p, t, **kw)), want["mean_accuracy"], rtol=1e-12)
        np.testing.assert_allclose(M.iou(p, t, **kw).numpy(), want["iou"], rtol=1e-12)
        np.testing.assert_allclose(float(M.miou(p, t, **kw)), want["miou"], rtol=1e-12)
        np.testing.assert_allclose(float(M.fwiou(p, t, **kw)), want["fwiou"], rtol=1e-12)
        np.testing.assert_allclose(float(M.dice(p, t, **kw)), want["dice"], rtol=1e-12)
        np.testing.assert_allclose(M.dice_per_class(p, t, **kw).numpy(), want["dice_per_class"], rtol=1e-12)


def test_out_of_range_labels_raise_naming_the_values():
    target = torch.tensor([[0, 1, 7, 255]])
    with pytest.raises(ValueError, match=r"target values \[7\].*\[0, 3\).*ignore label 255"):
        M.confusion_matrix(torch.zeros_like(target), target, 3, ignore_index=255)
    with pytest.raises(ValueError, match=r"target values \[7, 255\].*pass ignore_index=255"):
        M.SegmentationMetrics(3).update(torch.zeros_like(target), target)
    with pytest.raises(ValueError, match=r"predicted values \[5\]"):
        M.confusion_matrix(torch.tensor([5, 0]), torch.tensor([0, 0]), 3)


def test_uint8_targets_do_not_wrap_against_negative_ignore():
    target = torch.tensor([0, 1, 255], dtype=torch.uint8)
    with pytest.raises(ValueError, match="255"):
        M.confusion_matrix(torch.tensor([0, 1, 1]), target, 2, ignore_index=-1)


def test_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="does not match"):
        M.confusion_matrix(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="channels"):
        M.SegmentationMetrics(3).update(torch.randn(1, 4, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="integer"):
        M.confusion_matrix(torch.zeros(4, dtype=torch.long), torch.zeros(4), 2)


# ---------------------------------------------------------------------------------------------------------------
# classification
# ---------------------------------------------------------------------------------------------------------------
def ref_topk(scores: np.ndarray, target: np.ndarray, k: int) -> float:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean([target[i] in order[i] for i in range(len(target))]))


def test_classification_metrics_match_reference():
    rng = np.random.default_rng(0)
    m = M.ClassificationMetrics(10, topk=(1, 3, 5))
    all_s, all_t = [], []
    for _ in range(4):
        s = rng.standard_normal((17, 10)).astype(np.float32)
        t = rng.integers(0, 10, 17)
        m.update(torch.from_numpy(s), torch.from_numpy(t))
        all_s.append(s)
        all_t.append(t)
    s, t = np.concatenate(all_s), np.concatenate(all_t)
    got = m.compute()
    assert got["accuracy"] == pytest.approx(ref_topk(s, t, 1))
    assert got["top3_accuracy"] == pytest.approx(ref_topk(s, t, 3))
    assert got["top5_accuracy"] == pytest.approx(ref_topk(s, t, 5))
    per_class = [np.mean(s[t == k].argmax(1) == k) for k in range(10) if np.any(t == k)]
    assert got["mean_accuracy"] == pytest.approx(float(np.mean(per_class)))
    acc1, acc5 = M.accuracy(torch.from_numpy(s), torch.from_numpy(t), topk=(1, 5))
    assert float(acc1) == pytest.approx(ref_topk(s, t, 1)) and float(acc5) == pytest.approx(ref_topk(s, t, 5))


def test_classification_topk_larger_than_classes_is_dropped_and_labels_need_top1():
    m = M.ClassificationMetrics(3)  # default topk=(1, 5): top-5 of 3 classes is meaningless
    m.update(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([2]))
    assert m.compute() == {"accuracy": 1.0, "mean_accuracy": 1.0}
    with pytest.raises(ValueError, match="needs scores"):
        M.ClassificationMetrics(10).update(torch.tensor([1, 2]), torch.tensor([1, 2]))
    m1 = M.ClassificationMetrics(3, topk=(1,))
    m1.update(torch.tensor([1, 2]), torch.tensor([1, 0]))
    assert m1.compute()["accuracy"] == 0.5
    with pytest.raises(ValueError, match="topk"):
        M.accuracy(torch.randn(2, 3), torch.tensor([0, 1]), topk=5)


# ---------------------------------------------------------------------------------------------------------------
# distributed
# ---------------------------------------------------------------------------------------------------------------
def _sync_worker(rank: int, world_size: int) -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(100 + rank)
    pred, target = random_case(rng, 4, 255)
    seg = M.SegmentationMetrics(4, ignore_index=255)
    seg.update(torch.from_numpy(pred), torch.from_numpy(target))
    cls = M.ClassificationMetrics(4, topk=(1, 2))
    scores = torch.from_numpy(rng.standard_normal((9, 4)))
    labels = torch.from_numpy(rng.integers(0, 4, 9))
    cls.update(scores, labels)
    local = seg.confusion_matrix.clone()
    seg.sync()
    seg.sync()  # syncing twice must not double count
    cls.sync()
    # every rank rebuilds every rank's data and checks the totals against the references
    cases = [random_case(np.random.default_rng(100 + r), 4, 255) for r in range(world_size)]
    all_p = np.concatenate([c[0].ravel() for c in cases])
    all_t = np.concatenate([c[1].ravel() for c in cases])
    assert_scores_match(seg.compute(), ref_scores(all_p, all_t, 4, 255))
    cls_data = []
    for r in range(world_size):
        g = np.random.default_rng(100 + r)
        random_case(g, 4, 255)
        cls_data.append((g.standard_normal((9, 4)), g.integers(0, 4, 9)))
    s = np.concatenate([d[0] for d in cls_data])
    t = np.concatenate([d[1] for d in cls_data])
    got = cls.compute()
    assert got["accuracy"] == pytest.approx(ref_topk(s, t, 1))
    assert got["top2_accuracy"] == pytest.approx(ref_topk(s, t, 2))
    # more local updates after a sync: the next sync still gives exact totals
    seg.update(torch.from_numpy(pred), torch.from_numpy(target))
    seg.sync()
    assert int(local.sum()) == ref_total(target)
    assert int(seg.confusion_matrix.sum()) == 2 * ref_total(all_t)  # every rank added its batch twice


def ref_total(target: np.ndarray) -> int:
    return int(np.sum(target != 255))


@pytest.mark.slow
def test_sync_all_reduces_counts_across_two_gloo_processes():
    run_gloo(_sync_worker, 2)


def test_explicit_device_and_classification_confusion_matrix():
    m = M.SegmentationMetrics(3, device="cpu")
    assert m.confusion_matrix.device.type == "cpu" and m.confusion_matrix.dtype == torch.int64
    c = M.ClassificationMetrics(3, topk=(1, 2))
    c.update(torch.tensor([[3.0, 1.0, 0.0], [1.0, 0.0, 0.5], [0.0, 2.0, 1.0]]), torch.tensor([0, 1, 2]))
    assert c.confusion_matrix.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 0]]
    assert c.compute()["top2_accuracy"] == pytest.approx(2 / 3)


def test_sync_is_a_no_op_without_distributed():
    m = M.SegmentationMetrics(2)
    m.update(torch.tensor([0, 1]), torch.tensor([0, 1]))
    before = m.confusion_matrix.clone()
    m.sync()
    assert torch.equal(m.confusion_matrix, before)
