"""Non-model benchmarks: segmentation metrics vs torchmetrics, mask colouring vs the reference per-pixel loop,
VOC reading vs torchvision's ``VOCSegmentation``."""

from __future__ import annotations

import gc
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from ._config import Settings
from ._timing import guard, interleave, ratio_row, skip_row, value_row

__all__ = [
    "bench_metrics", "bench_colorize", "bench_voc", "reference_class_colours", "reference_colorize",
]

Row = Dict[str, Any]


# ---------------------------------------------------------------------------------------------- metrics


def bench_metrics(settings: Settings) -> List[Row]:
    """``SegmentationMetrics.update`` vs torchmetrics ``MulticlassJaccardIndex`` (22 classes, ignore 255), both
    with their default argument checks, on integer label maps; goal >= 2x and identical IoU values.

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_metrics(TINY)  # doctest: +SKIP
    """
    try:
        from encdec.metrics import SegmentationMetrics
    except ImportError as error:
        return [skip_row("metrics", "SegmentationMetrics", f"encdec.metrics does not import yet: {error}")]
    try:
        from torchmetrics.classification import MulticlassJaccardIndex
    except ImportError as error:
        return [skip_row("metrics", "SegmentationMetrics", f"torchmetrics is not installed ({error}); "
                         "pip install 'encdec[bench]'")]
    return guard("metrics", "SegmentationMetrics",
                  lambda: _bench_metrics(settings, SegmentationMetrics, MulticlassJaccardIndex))


def _bench_metrics(settings: Settings, segmentation_metrics: Any, jaccard: Any) -> List[Row]:
    from torchmetrics.functional.classification import multiclass_jaccard_index

    n, h, w = settings.metric_shape
    classes, ignore = 22, 255
    print(f"  metrics: {n}x{h}x{w} labels, {classes} classes, ignore {ignore}", flush=True)
    gen = torch.Generator().manual_seed(3)
    target = torch.randint(0, classes, (n, h, w), generator=gen)
    target[torch.rand(n, h, w, generator=gen) < 0.05] = ignore
    # predictions right 70% of the time, so IoUs are neither 0 nor 1
    preds = torch.where(torch.rand(n, h, w, generator=gen) < 0.7, target.clamp(max=classes - 1),
                        torch.randint(0, classes, (n, h, w), generator=gen))
    ours = segmentation_metrics(classes, ignore_index=ignore)
    theirs = jaccard(num_classes=classes, ignore_index=ignore, average="macro")

    def run_ours() -> None:
        ours.reset()
        ours.update(preds, target)

    def run_theirs() -> None:
        theirs.reset()
        theirs.update(preds, target)

    times = interleave({"torchmetrics": run_theirs, "encdec": run_ours}, **settings.timing())
    run_ours()
    run_theirs()
    scores = ours.compute()
    per_class_theirs = multiclass_jaccard_index(preds, target, classes, average="none", ignore_index=ignore)
    per_class_ours = torch.tensor(scores["iou"], dtype=torch.float64)
    present = ~torch.isnan(per_class_ours)
    diff_per_class = float((per_class_ours[present] - per_class_theirs.double()[present]).abs().max())
    diff_mean = abs(float(scores["miou"]) - float(theirs.compute()))
    diff = max(diff_per_class, diff_mean)
    shape = f"{n}x{h}x{w}"
    return [
        ratio_row("metrics", "SegmentationMetrics.update vs MulticlassJaccardIndex", times, "torchmetrics", "encdec",
                  goal=2.0, notes=f"int64 label maps {shape}, 22 classes, ignore_index=255, default validation",
                  shape=shape),
        value_row("metrics", "IoU max |difference| vs torchmetrics", diff, goal=1e-6, kind="max_abs_diff",
                  higher_is_better=False,
                  notes=f"per-class IoU and mIoU (encdec float64, torchmetrics float32); mIoU {scores['miou']:.6f}"),
    ]


# ---------------------------------------------------------------------------------------------- colorize


def reference_class_colours() -> Dict[int, Tuple[int, int, int]]:
    """The VOC U-Net report's ``cls_invert``: the 21 VOC colours plus class 21 (the boundary) = (224, 224, 192).

    Example:
        >>> reference_class_colours()[21]
        (224, 224, 192)
    """
    from tests.fixtures.trees import VOC_PALETTE

    colours = {k: tuple(VOC_PALETTE[3 * k : 3 * k + 3]) for k in range(21)}
    colours[21] = (224, 224, 192)
    return colours


def reference_colorize(pred: np.ndarray, cls_invert: Dict[int, Tuple[int, int, int]]) -> np.ndarray:
    """The VOC U-Net report's mask colouring (its ``val_model``), restated: the prediction arrives as a float
    array (``argmax(...).float()``), and a Python double loop writes one pixel at a time into a float64 image from
    the ``cls_invert`` dict.

    Example:
        >>> reference_colorize(np.array([[0.0, 1.0]]), reference_class_colours()).tolist()
        [[[0.0, 0.0, 0.0], [128.0, 0.0, 0.0]]]
    """
    temp = pred
    temp_rgb = np.zeros((temp.shape[0], temp.shape[1], 3))
    for j in range(temp.shape[0]):
        for k in range(temp.shape[1]):
            pred_class = int(temp[j][k])
            temp_rgb[j, k] = cls_invert[pred_class]
    return temp_rgb


def _to_hwc(image: Any) -> np.ndarray:
    """colorize's output (tensor or array, HWC or CHW, or a PIL image) as a ``(H, W, 3)`` uint8 array."""
    if hasattr(image, "convert") and not isinstance(image, (np.ndarray, torch.Tensor)):
        image = np.asarray(image.convert("RGB"))
    array = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 3 and array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    if array.dtype != np.uint8:
        array = (array * 255).round().astype(np.uint8) if array.max() <= 1.0 else array.astype(np.uint8)
    return array


def bench_colorize(settings: Settings) -> List[Row]:
    """``encdec.viz.colorize`` vs the reference per-pixel loop, time per pixel (goal >= 100x). The loop is timed
    on a 64x64 mask (it is that slow), ``colorize`` on a ``colorize_side`` square mask.

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_colorize(TINY)  # doctest: +SKIP
    """
    try:
        from encdec.viz import colorize
    except ImportError as error:
        return [skip_row("colorize", "colorize", f"encdec.viz.colorize does not import yet: {error}")]
    return guard("colorize", "colorize", lambda: _bench_colorize(settings, colorize))


def _bench_colorize(settings: Settings, colorize: Callable[..., Any]) -> List[Row]:
    side, small = settings.colorize_side, 64
    print(f"  colorize: {side}x{side} mask vs the reference loop on {small}x{small}", flush=True)
    gen = torch.Generator().manual_seed(5)
    labels = torch.randint(0, 22, (side, side), generator=gen)  # 22 classes: 21 = boundary, as in the VOC U-Net report
    pred_small = labels[:small, :small].float().numpy()  # the reference gets argmax(...).float() as NumPy
    colours = reference_class_colours()
    times = interleave({
        "reference loop": lambda: reference_colorize(pred_small, colours),
        "encdec": lambda: colorize(labels, palette="voc22"),
    }, **settings.timing())
    scale = {"reference loop": small * small, "encdec": side * side}
    per_pixel = {k: [t / scale[k] for t in v] for k, v in times.items()}
    ours_small = _to_hwc(colorize(labels[:small, :small], palette="voc22"))
    same = bool(np.array_equal(ours_small.astype(np.float64), reference_colorize(pred_small, colours)))
    row = ratio_row("colorize", "colorize vs reference per-pixel loop", per_pixel, "reference loop", "encdec",
                    goal=100.0, notes=f"time per pixel; the VOC report's loop on a {small}x{small} float label map, "
                                      f"colorize(labels, palette='voc22') on a {side}x{side} int64 tensor; "
                                      f"same colours: {same}", identical=same)
    # the medians are per pixel: report them in nanoseconds per pixel instead of milliseconds
    row["baseline_ns_per_pixel"] = row.pop("baseline_ms") * 1e6
    row["candidate_ns_per_pixel"] = row.pop("candidate_ms") * 1e6
    return [row]


# ---------------------------------------------------------------------------------------------- VOC reading


def bench_voc(settings: Settings) -> List[Row]:
    """``encdec.datasets.VOCSegmentation`` with the reference preset (``presets.voc_eval()``: 256x256 nearest,
    ImageNet normalisation) vs torchvision ``VOCSegmentation`` with the equivalent ``transforms.v2`` pipeline, one
    pass over a generated VOC tree in the main process (goal >= 1.0x).

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_voc(TINY)  # doctest: +SKIP
    """
    try:
        from encdec.datasets import presets
        from encdec.datasets.voc import VOCSegmentation

        preset: Optional[Callable[..., Any]] = getattr(presets, "voc_eval", None)
        if preset is None:
            raise ImportError("encdec.datasets.presets has no voc_eval")
    except ImportError as error:
        return [skip_row("voc", "VOC reading", f"encdec.datasets VOC reading does not import yet: {error}")]
    return guard("voc", "VOC reading", lambda: _bench_voc(settings, VOCSegmentation, preset))


def _torchvision_voc(root: Path) -> Any:
    import torchvision
    from torchvision import tv_tensors
    from torchvision.transforms import InterpolationMode, v2

    pipeline = v2.Compose([
        v2.ToImage(),
        v2.Resize((256, 256), interpolation=InterpolationMode.NEAREST, antialias=True),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])

    def transforms(image: Any, mask: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        target = tv_tensors.Mask(torch.from_numpy(np.array(mask, dtype=np.int64)))
        x, y = pipeline(image, target)
        return x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)

    return torchvision.datasets.VOCSegmentation(str(root), year="2012", image_set="train", transforms=transforms)


def _bench_voc(settings: Settings, voc_dataset: Any, preset: Callable[..., Any]) -> List[Row]:
    from tests.fixtures.trees import write_voc_tree

    count = settings.voc_images
    print(f"  voc: {count} generated 500x375 images, reference preset vs torchvision + v2", flush=True)
    with tempfile.TemporaryDirectory(prefix="encdec-bench-voc-") as tmp:
        root = Path(tmp)
        write_voc_tree(root, {"train": [f"2007_{k:06d}" for k in range(count)]}, size=(375, 500))
        ours = voc_dataset(root, "train", transforms=preset())
        theirs = _torchvision_voc(root)

        def read(dataset: Any) -> Callable[[], None]:
            def run() -> None:
                for i in range(len(dataset)):
                    dataset[i]

            return run

        times = interleave({"torchvision": read(theirs), "encdec": read(ours)}, **settings.timing())
        x1, y1 = ours[0]
        x2, y2 = theirs[0]
        same_mask = bool(torch.equal(torch.as_tensor(y1).long(), y2.long()))
        image_diff = float((torch.as_tensor(x1) - x2).abs().max())
        del ours, theirs
        gc.collect()
    return [ratio_row("voc", "VOCSegmentation + presets.voc_eval vs torchvision + v2", times, "torchvision",
                      "encdec", goal=1.0,
                      notes=f"one pass over {count} 500x375 JPEG + PNG pairs, main process; masks equal: {same_mask}, "
                            f"image max |diff| {image_diff:.1e}", masks_equal=same_mask, image_max_abs_diff=image_diff)]

