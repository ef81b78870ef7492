"""``encdec eval``: metrics of a model on a dataset split, as a table or JSON."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from .._json import jsonable
from .._registry import model_info
from ..course_metrics import CourseMetrics
from ..datasets import DATA_KINDS, DataSpecError, from_spec, take
from ..input_spec import input_spec_of
from ..training import evaluate
from ._common import (
    FORMAT,
    CLIError,
    UsageError,
    check_size,
    checked_data,
    data_failure,
    list_skipped,
    model_for_inference,
    parse_data,
    positive,
    recorded_size,
    stderr,
    table,
)
from .train import add_model_args, add_runtime_args, check_precision

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="metrics of a model on a dataset", formatter_class=FORMAT, description=(
        "Evaluate weights on a dataset split and print a metrics table (--json for JSON). Segmentation:\n"
        "pixel accuracy, mean class accuracy, mIoU, frequency-weighted IoU, Dice and per-class IoU/Dice, all\n"
        "from one confusion matrix, ignore labels left out. Classification: top-1/top-5 and class-mean accuracy.\n\n"
        "examples:\n  encdec eval --model unet --weights UNet_best_model.pth --data voc:data/VOC2012\n"
        "  encdec eval --weights runs/unet-shapes --data shapes --json\n"
        "  encdec eval --model vgg16_cifar --weights vgg16_epoch250.ckpt --data cifar10:data"))
    add_model_args(p, required=False)
    p.add_argument("--weights", required=True, metavar="FILE", help="checkpoint, or a folder from encdec train")
    p.add_argument("--data", required=True, metavar="KIND:PATH")
    p.add_argument("--split", help="split to score (default: val; Pet: val; CIFAR-10: test)")
    p.add_argument("--size", type=positive(), help="image side (default: the training size recorded with the "
                                                    "weights, else the dataset's usual size)")
    p.add_argument("--batch-size", type=positive(), default=16)
    p.add_argument("--limit", type=positive(), metavar="N", help="score only the first N images")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="read every sample first, score without the unusable ones and list them")
    p.add_argument("--convention", choices=["standard", "course"], default="standard",
                   help="course: also the course reports' own pixel accuracy (boundary counted, per image then per "
                        "batch) and Dice (intersection over all pixels), beside the standard metrics")
    add_runtime_args(p, precision="fp32")  # scores to compare with others: the same on every machine
    p.set_defaults(func=run)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and math.isfinite(value) else "n/a"


def run(args: argparse.Namespace) -> int:
    spec = parse_data(args.data)
    splits = DATA_KINDS[spec.kind].splits
    if args.split is not None and args.split not in splits:
        raise UsageError(f"--split {args.split!r} is not a split of --data {spec.kind}; "
                         f"choose from {', '.join(splits)}")
    check_precision(args)
    model = model_for_inference(args.model, Path(args.weights), args.arg, args.num_classes)
    name = model.encdec_config["architecture"]
    info = model_info(name)
    fixed = input_spec_of(model).fixed if input_spec_of(model) is not None else None
    size = args.size or fixed or recorded_size(model) or spec.info.default_size(info.task, info.input_size)
    if args.size is None and not fixed and recorded_size(model):
        stderr(f"note: evaluating at {size}x{size}, the training size recorded with the weights (--size overrides)")
    normalize = tuple(model.encdec_config.get("mean", ())) not in ((), (0.0, 0.0, 0.0))
    try:
        dataset = from_spec(spec, args.split or spec.info.eval_split, size=size, task=info.task,
                            num_classes=getattr(model, "num_classes", None), normalize=normalize,
                            skip_corrupt=args.skip_corrupt)
    except DataSpecError as error:
        raise UsageError(f"--data {error}") from None
    except FileNotFoundError as error:
        raise data_failure(error) from None
    check_size(model, size, name)
    if getattr(model, "num_classes", dataset.num_classes) != dataset.num_classes:
        raise CLIError(f"{name} has {model.num_classes} outputs but --data {spec.kind} has {dataset.num_classes} "
                       "classes; pass --num-classes or use matching weights")
    dataset = take(dataset, args.limit)
    skipped: list = []
    if args.skip_corrupt:
        dataset, skipped = checked_data(dataset, "evaluation", full=True, skip=True)
    loader = DataLoader(dataset, batch_size=args.batch_size,
                        num_workers=args.workers if args.workers is not None else 0)
    started = time.perf_counter()
    metrics = None
    if args.convention == "course":
        if info.task != "segmentation":
            raise UsageError("--convention course applies to segmentation models (the reports' pixel accuracy and "
                             "Dice)")
        metrics = CourseMetrics(dataset.num_classes, ignore_index=dataset.ignore_index)
    scores = evaluate(model, loader, metrics, device=args.device, precision=args.precision)
    seconds = time.perf_counter() - started
    list_skipped(skipped)
    if args.json:
        document = {"model": name, "data": args.data, "images": len(dataset), **scores,
                    "skipped": [{"file": p.file, "reason": p.reason} for p in skipped]}
        print(json.dumps(jsonable(document, finite=True), indent=2))
        return 0
    print(f"{name} on {spec.kind} ({len(dataset)} images, {seconds:.1f} s)")
    scalar = [(k, v) for k, v in scores.items() if isinstance(v, (int, float))]
    print(table([(k, _fmt(v)) for k, v in scalar], ["metric", "value"], "lr"))
    per_class = {k: v for k, v in scores.items() if isinstance(v, list)}
    names = dataset.class_names
    if per_class and len(names) == len(next(iter(per_class.values()))):
        keys = list(per_class)
        rows = [[class_name] + [_fmt(per_class[k][i]) for k in keys] for i, class_name in enumerate(names)]
        print()
        print(table(rows, ["class"] + keys, "l" + "r" * len(keys)))
        if any("n/a" in row for row in rows):
            print("n/a: a class absent from targets and predictions, or the ignored class; left out of the means")
    if args.convention == "course":
        print("\ncourse_*: the reports' own formulas (encdec.course_metrics), for comparison with their numbers; the "
              "other rows are the standard metrics")
    return 0
