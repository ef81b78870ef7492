"""Oxford-IIIT Pet: binary pet/background segmentation with the reference ResNet34-U-Net, scored by Dice.

Loads the reference checkpoint when given (``ResNet_UNet_best_model_90.pth``), scores it on the test split,
trains with cross-entropy + soft Dice, and scores it again. Dice here is the real Dice of the pet class,
``2|P and T| / (|P| + |T|)``; the reference's own formula divided the overlap by the pixel count, so its reported
0.90 is not comparable.

    python examples/pets_resnet34_unet.py --data data/oxford-iiit-pet --weights ResNet_UNet_best_model_90.pth

``--data`` holds ``images/*.jpg`` and ``annotations/`` (``trimaps/*.png``, ``trainval.txt``, ``test.txt``); trimaps
are mapped as in the reference: pet and border -> 1, background -> 0. ``--smoke`` runs a few 64x64 images through
every step.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Subset

import encdec
from encdec import viz
from encdec.cli import main as encdec_command
from encdec.datasets import OxfordPetSegmentation, presets
from encdec.inference import predict
from encdec.losses import DiceCELoss
from encdec.training import evaluate, fit, recipes, seed_everything


def _head(dataset: Any, n: Optional[int]) -> Any:
    if not n or n >= len(dataset):
        return dataset
    subset = Subset(dataset, range(n))
    subset.ignore_index = dataset.ignore_index
    return subset


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="the oxford-iiit-pet folder")
    parser.add_argument("--weights", type=Path, help="reference checkpoint, e.g. ResNet_UNet_best_model_90.pth")
    parser.add_argument("--out", type=Path, default=Path("runs/pets"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--size", type=int, default=256, help="side, divisible by 64 (the reference: 256)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="a few 64x64 images: a fast check of every step")
    parser.add_argument("--recipe", choices=[r for r in recipes.names() if recipes.get(r).data == "pet"],
                        help="run a course report's recipe instead (encdec train --recipe; see encdec recipes)")
    args = parser.parse_args(argv)
    if args.recipe:
        smoke = ["--epochs", "1", "--size", "64", "--limit", "4", "--batch-size", "2", "--workers", "0",
                 "--quiet", "--no-plots"] if args.smoke else []
        code = encdec_command(["train", "--recipe", args.recipe, "--data", f"pet:{args.data}", "--out",
                               str(args.out), *smoke])
        if code:
            raise SystemExit(code)
        return {}
    size, limit, workers, epochs = (64, 4, 0, 1) if args.smoke else (args.size, None, 2, args.epochs)

    seed_everything(0)
    # The reference feeds [0, 1] images without normalisation; keep that to match its checkpoint.
    # Model selection on a seeded validation split of trainval; the test split is scored, never selected on.
    train = _head(OxfordPetSegmentation(args.data, "train", transforms=presets.pets_train(size)), limit)
    val = _head(OxfordPetSegmentation(args.data, "val", transforms=presets.pets_eval(size)), limit)
    test = _head(OxfordPetSegmentation(args.data, "test", transforms=presets.pets_eval(size)), limit)
    train_loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                              drop_last=len(train) > args.batch_size)
    val_loader = DataLoader(val, batch_size=args.batch_size, num_workers=workers)
    test_loader = DataLoader(test, batch_size=args.batch_size, num_workers=workers)

    model = encdec.resnet34_unet(num_classes=2, weights=args.weights)  # reference keys are converted on load
    print(f"resnet34_unet: {sum(p.numel() for p in model.parameters()):,} parameters, "
          f"{'loaded ' + str(args.weights) if args.weights else 'random weights'}")
    before = evaluate(model, test_loader, device=args.device)
    print(f"before: Dice {before['dice']:.4f}  mIoU {before['miou']:.4f}")

    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    history = fit(model, train_loader, val_loader, epochs=epochs, optimizer=optimizer, loss=DiceCELoss(),
                  device=args.device, checkpoint_dir=None if args.smoke else args.out, overwrite=True,
                  monitor="val_dice", progress=not args.smoke)
    after = evaluate(model, test_loader, device=args.device)
    print(f"after {epochs} epoch(s): Dice {after['dice']:.4f}  mIoU {after['miou']:.4f}  "
          f"(best val_dice {history.best_value:.4f} at epoch {history.best_epoch})")

    images, masks = next(iter(test_loader))
    viz.save_prediction_grid(args.out / "predictions.png", images, masks, predict(model, images, device=args.device),
                             palette="binary")
    encdec.save_pretrained(model, args.out, class_names=["background", "pet"], mean=(0.0, 0.0, 0.0),
                           std=(1.0, 1.0, 1.0))
    written = "predictions.png, config.json, model.safetensors" + ("" if args.smoke else ", checkpoints, history.json")
    print(f"wrote {args.out}/ ({written})")
    return {"dice_before": before["dice"], "dice_after": after["dice"], "miou_after": after["miou"]}


if __name__ == "__main__":
    main()
