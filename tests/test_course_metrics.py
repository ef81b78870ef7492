"""The course reports' metrics against values worked out by hand from the reports' formulas.

Pet report, ``dice_score`` on one batch of label maps: ``2 * intersection / (2 * N * H * W)`` (the listing's
``C, H, W = preds.shape`` gives C = N on a label map); ``evaluate`` averages the batch values. VOC U-Net report:
``accuracy_check`` = equal pixels / all pixels of an image, ``accuracy_check_for_batch`` = mean over the images,
the epoch = mean over the batches.
"""

import pytest
import torch

from encdec.course_metrics import CourseMetrics, course_dice, course_dice_per_batch, course_pixel_accuracy


def report_dice_score(preds, masks):
    """The Pet report's ``dice_score`` as printed (comments removed), to show where it runs and where it does not."""
    smooth = 1e-10
    preds = torch.sigmoid(preds)
    preds = (preds > 0.5).float()
    intersection = (preds * masks).sum()
    C, H, W = preds.shape
    total_pixels = 2.0 * C * H * W
    dice = 2.0 * intersection / (total_pixels + smooth)
    return dice


def _two_images():
    """Two 4x4 images. Image 0: target pet = top-left 2x2 (4 pixels), prediction = the top row (4 pixels); they
    share pixels (0, 0) and (0, 1): intersection 2. Image 1: target all pet (16), prediction the top half (8):
    intersection 8."""
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    pred = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, :2, :2] = 1
    pred[0, 0, :] = 1
    target[1] = 1
    pred[1, :2, :] = 1
    return pred, target


def test_one_batch_scores_twice_the_intersection_over_twice_the_batch_pixels():
    pred, target = _two_images()
    # 2 * (2 + 8) / (2 * 2 * 4 * 4) = 20 / 64
    assert course_dice_per_batch([(pred, target)]) == pytest.approx(20 / 64)


def test_batches_are_averaged_with_equal_weight_unlike_images():
    pred, target = _two_images()
    full = torch.ones(1, 4, 4, dtype=torch.long)  # a last batch of one image, predicted perfectly: 2*16/(2*16) = 1
    # per batch, as the report's evaluate: (20/64 + 1) / 2 = 0.65625
    assert course_dice_per_batch([(pred, target), (full, full)]) == pytest.approx((20 / 64 + 1.0) / 2)
    # per image: (2/16 + 8/16 + 16/16) / 3 = 26/48
    everything_pred, everything_target = torch.cat([pred, full]), torch.cat([target, full])
    assert course_dice(everything_pred, everything_target) == pytest.approx(26 / 48)
    m = CourseMetrics(2)
    m.update(pred, target)
    m.update(full, full)
    assert m.compute()["course_dice"] == pytest.approx(26 / 48)


def test_equal_batches_give_the_per_image_mean():
    pred, target = _two_images()
    # batches of one image each: (2*2/(2*16) + 2*8/(2*16)) / 2 = (1/8 + 1/2) / 2 = 5/16, the same as per image
    value = course_dice_per_batch([(pred[:1], target[:1]), (pred[1:], target[1:])])
    assert value == pytest.approx(5 / 16)
    assert course_dice(pred, target) == pytest.approx(5 / 16)


def test_a_perfect_quarter_pet_scores_a_quarter():
    mask = torch.zeros(3, 8, 8, dtype=torch.long)
    mask[:, :4, :4] = 1  # 16 of 64 pixels: 2 * 16 / (2 * 64) = 0.25 per image, 0.25 for the batch
    assert course_dice_per_batch([(mask, mask)]) == pytest.approx(0.25)
    assert course_dice(mask, mask) == pytest.approx(0.25)


def test_logits_are_reduced_by_argmax_before_the_formula():
    pred, target = _two_images()
    logits = torch.zeros(2, 2, 4, 4)
    logits[:, 0] = 1.0
    logits[:, 1] = torch.where(pred == 1, 2.0, 0.5)  # class 1 wins where pred is 1; elsewhere 1.0 > 0.5
    # channel 1 is positive everywhere (a sigmoid > 0.5 on it would call every pixel pet); the argmax does not
    assert course_dice_per_batch([(logits, target)]) == pytest.approx(20 / 64)
    assert course_dice(logits, target) == pytest.approx(5 / 16)


def test_float_label_maps_count_like_integer_ones():
    pred, target = _two_images()
    assert course_dice_per_batch([(pred.float(), target)]) == pytest.approx(20 / 64)


def test_the_printed_listing_runs_on_label_maps_only():
    pred, target = _two_images()
    # on (N, H, W) float labels the listing runs, C being the batch size: the value worked out above
    assert float(report_dice_score(pred.float(), target)) == pytest.approx(20 / 64)
    # on its models' (N, 2, H, W) outputs it does not: the product fails to broadcast for a batch of 16, and the
    # three-name unpacking fails on any 4-D tensor
    with pytest.raises(RuntimeError):
        report_dice_score(torch.randn(16, 2, 4, 4), torch.zeros(16, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="too many values to unpack"):
        report_dice_score(torch.randn(2, 2, 4, 4), target)


def test_course_dice_per_batch_refuses_what_the_formula_cannot_score():
    pred, target = _two_images()
    with pytest.raises(ValueError, match="no batches"):
        course_dice_per_batch([])
    with pytest.raises(ValueError, match="binary"):
        course_dice_per_batch([(pred, target * 255)])
    with pytest.raises(ValueError, match="same size"):
        course_dice_per_batch([(pred[:1], target)])


def test_course_pixel_accuracy_counts_the_boundary_as_a_class():
    # image 0: 3 of 4 pixels equal (the boundary pixel 21 predicted 0 counts as wrong) -> 3/4
    # image 1: 0 of 4 -> 0; the batch: (3/4 + 0) / 2 = 3/8
    preds = torch.tensor([[[0, 1], [0, 3]], [[1, 1], [1, 1]]])
    targets = torch.tensor([[[0, 1], [21, 3]], [[2, 2], [2, 2]]])
    assert course_pixel_accuracy(preds, targets) == pytest.approx(3 / 8)
    # a second batch of one perfect image: the epoch value is (3/8 + 1) / 2, not the pixel mean 7/12
    m = CourseMetrics(22, ignore_index=21)
    m.update(preds, targets)
    m.update(torch.tensor([[[4, 4], [4, 4]]]), torch.tensor([[[4, 4], [4, 4]]]))
    assert m.compute()["course_pixel_accuracy"] == pytest.approx((3 / 8 + 1.0) / 2)
