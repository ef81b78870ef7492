"""Pascal VOC 2012: the reference U-Net and ResNet-50 U-Net, loaded from their checkpoints, fine-tuned one epoch.

For each model: build it with 22 outputs (21 classes + the boundary class 21, as the reference checkpoints were
trained), load the reference checkpoint if you have it, score it on the validation split, fine-tune one epoch
with ``fit``, score it again, and write coloured predictions and a ``save_pretrained`` folder.

    python examples/voc_unet.py --data data/VOC2012 \\
        --unet-weights UNet_best_model.pth --resnet-weights UNet_resnet_course.pth --out runs/voc

``--data`` is the ``VOC2012`` folder (``JPEGImages/``, ``SegmentationClass/``, ``ImageSets/Segmentation/``) or
a parent holding ``VOCdevkit/VOC2012``. Without a checkpoint a model starts from random weights. ``--smoke``
runs a few small images through every step (the test suite runs it on a generated VOC tree).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

import encdec
from encdec import viz
from encdec.cli import main as encdec_command
from encdec.datasets import VOCSegmentation, presets
from encdec.inference import predict
from encdec.training import evaluate, fit, recipes, seed_everything

MODELS = {"unet": "unet_weights", "resnet50_unet": "resnet_weights"}


def loaders(root: Path, size: int, batch_size: int, limit: Optional[int], workers: int):
    """Training and validation loaders; ``boundary="class"`` maps the 255 borders to class 21 (ignored)."""
    train = VOCSegmentation(root, "train", transforms=presets.voc_train(size), boundary="class")
    val = VOCSegmentation(root, "val", transforms=presets.voc_eval(size), boundary="class")
    class_names = val.class_names
    if limit:
        train, val = _head(train, limit), _head(val, limit)
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers,
                              drop_last=len(train) > batch_size)
    return train_loader, DataLoader(val, batch_size=batch_size, num_workers=workers), class_names


def _head(dataset: Any, n: int) -> Subset:
    subset = Subset(dataset, range(min(n, len(dataset))))
    subset.ignore_index = dataset.ignore_index  # fit() and evaluate() read it for the loss and the metrics
    return subset


def save_predictions(model: torch.nn.Module, loader: DataLoader, folder: Path, device: str) -> None:
    """A prediction grid, palette masks and overlays for the first validation batch."""
    images, targets = next(iter(loader))
    labels = predict(model, images, device=device)
    mean, std = presets.IMAGENET_MEAN, presets.IMAGENET_STD
    viz.save_prediction_grid(folder / "predictions.png", images, targets, labels, palette="voc22", ignore_index=21,
                             mean=mean, std=std)
    for i, (image, label) in enumerate(zip(images, labels)):
        viz.save_mask(folder / f"val{i}_mask.png", label, palette="voc22")
        Image.fromarray(viz.overlay(image, label, palette="voc22", mean=mean, std=std)).save(folder / f"val{i}.png")


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the VOC2012 folder (or its VOCdevkit parent)")
    parser.add_argument("--unet-weights", type=Path, help="reference U-Net checkpoint, e.g. UNet_best_model.pth")
    parser.add_argument("--resnet-weights", type=Path, help="reference ResNet-50 U-Net, e.g. UNet_resnet_course.pth")
    parser.add_argument("--out", type=Path, default=Path("runs/voc"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--size", type=int, default=256, help="training and evaluation side (the reference: 256)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="which to run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="4 images at 32x32: a fast check of every step")
    parser.add_argument("--recipe", choices=[r for r in recipes.names() if recipes.get(r).data == "voc"],
                        help="run a course report's recipe instead (encdec train --recipe; see encdec recipes)")
    args = parser.parse_args(argv)
    if args.recipe:
        smoke = ["--epochs", "1", "--size", "64", "--limit", "4", "--batch-size", "2", "--workers", "0",
                 "--quiet", "--no-plots"] if args.smoke else []
        code = encdec_command(["train", "--recipe", args.recipe, "--data", f"voc:{args.data}", "--out",
                               str(args.out), *smoke])
        if code:
            raise SystemExit(code)
        return {}
    limit, workers = (4, 0) if args.smoke else (None, 2)
    size, batch_size = (32, 2) if args.smoke else (args.size, args.batch_size)

    seed_everything(0)
    train_loader, val_loader, class_names = loaders(args.data, size, batch_size, limit, workers)
    results: Dict[str, Dict[str, float]] = {}
    for name in args.models:
        option = MODELS[name]
        model = encdec.create_model(name, num_classes=22)
        checkpoint = getattr(args, option)
        if checkpoint is not None:
            report = encdec.load_weights(model, checkpoint)  # converts the reference key names, strict
            dropped = f" (dropped {len(report.dropped)} entries it never uses)" if report.dropped else ""
            print(f"{name}: loaded {len(report.loaded)} tensors from {checkpoint}{dropped}")
        else:
            print(f"{name}: no reference checkpoint given, starting from random weights")
        before = evaluate(model, val_loader, device=args.device)
        started = time.perf_counter()
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        fit(model, train_loader, val_loader, epochs=args.epochs, optimizer=optimizer, device=args.device,
            progress=not args.smoke)
        after = evaluate(model, val_loader, device=args.device)
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        save_predictions(model, val_loader, folder, args.device)
        encdec.save_pretrained(model, folder, class_names=class_names, mean=presets.IMAGENET_MEAN,
                               std=presets.IMAGENET_STD)
        results[name] = {"miou_before": before["miou"], "miou_after": after["miou"],
                         "pixel_accuracy_after": after["pixel_accuracy"],
                         "seconds": time.perf_counter() - started}
    print(f"\n{'model':<16}{'mIoU before':>12}{'mIoU after':>12}{'pixel acc.':>12}")
    for name, r in results.items():
        print(f"{name:<16}{r['miou_before']:>12.4f}{r['miou_after']:>12.4f}{r['pixel_accuracy_after']:>12.4f}")
    print(f"(mIoU over the classes present, the boundary class 21 ignored; predictions in {args.out}/)")
    return results


if __name__ == "__main__":
    main()
