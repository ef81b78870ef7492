"""Dog images: a small CNN vs a residual fully-connected network vs an ImageNet-pretrained ResNet-18.

The comparison of the reference course report ("CNN vs FCN", FCN meaning fully connected): the same data, the
same epochs, three models. Convolutions share weights across positions; the fully-connected network must learn
every position separately from far fewer images per parameter, which shows in the accuracy table.

    python examples/dogs_cnn_vs_fcn.py --data data/Images --resnet18-weights resnet18-f37072fd.pth --epochs 5

``--data`` holds one folder of images per class (``n02085620-Chihuahua/*.jpg``, Stanford Dogs style); a seeded
split holds out 20% of each class. ``resfcn18`` at the reference 192x192 input has 457M parameters (1.8 GB, and
3.6 GB more for Adam); ``--fcn-size`` (default 64) makes it smaller. ``--resnet18-weights`` is torchvision's
ImageNet file (without it ResNet-18 starts from random weights). ``--smoke`` is a seconds-long check.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch.utils.data import DataLoader

import encdec
from encdec.cli import main as encdec_command
from encdec.datasets import DogImages, presets
from encdec.training import evaluate, fit, recipes, seed_everything


def loaders(root: Path, size: int, batch_size: int, workers: int):
    train = DogImages(root, "train", transform=presets.dogs_train(size))
    val = DogImages(root, "val", transform=presets.dogs_eval(size))
    batch_size = min(batch_size, len(train))
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers,
                              drop_last=len(train) > batch_size)
    return train_loader, DataLoader(val, batch_size=batch_size, num_workers=workers), train.num_classes


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="folder of class folders")
    parser.add_argument("--resnet18-weights", type=Path, help="torchvision ImageNet file resnet18-f37072fd.pth")
    parser.add_argument("--out", type=Path, default=Path("runs/dogs"))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cnn-size", type=int, default=64, help="input side of custom_cnn (the reference: 32)")
    parser.add_argument("--fcn-size", type=int, default=64, help="input side of resfcn18 (the reference: 192)")
    parser.add_argument("--resnet-size", type=int, default=160, help="input side of ResNet-18 (ImageNet: 224)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one epoch: a fast check of every step")
    parser.add_argument("--recipe", choices=[r for r in recipes.names() if recipes.get(r).data == "dogs"],
                        help="run a course report's recipe instead (encdec train --recipe; see encdec recipes)")
    args = parser.parse_args(argv)
    if args.recipe:
        smoke = ["--epochs", "1", "--size", "32", "--limit", "4", "--batch-size", "2", "--workers", "0",
                 "--quiet", "--no-plots"] if args.smoke else []
        code = encdec_command(["train", "--recipe", args.recipe, "--data", f"dogs:{args.data}", "--out",
                               str(args.out), *smoke])
        if code:
            raise SystemExit(code)
        return {}
    if args.smoke:
        args.epochs, args.cnn_size, args.fcn_size, args.resnet_size = 1, 32, 16, 32
    workers = 0 if args.smoke else 2

    seed_everything(0)
    runs = {
        "custom_cnn": (args.cnn_size, lambda n: encdec.custom_cnn(num_classes=n)),
        "resfcn18": (args.fcn_size, lambda n: encdec.resfcn18(num_classes=n, input_size=args.fcn_size)),
        "resnet18_classifier": (args.resnet_size, lambda n: encdec.resnet18_classifier(
            num_classes=n, encoder_weights=args.resnet18_weights)),  # ImageNet features, a new 'fc' head
    }
    results: Dict[str, Dict[str, float]] = {}
    for name, (size, build) in runs.items():
        train_loader, val_loader, num_classes = loaders(args.data, size, args.batch_size, workers)
        model = build(num_classes)
        params = sum(p.numel() for p in model.parameters())
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
        started = time.perf_counter()
        history = fit(model, train_loader, val_loader, epochs=args.epochs, optimizer=optimizer, device=args.device,
                      checkpoint_dir=None if args.smoke else args.out / name, overwrite=True,
                      progress=not args.smoke)
        scores = evaluate(model, val_loader, device=args.device)
        results[name] = {"parameters": params, "size": size, "val_accuracy": scores["accuracy"],
                         "best_val_accuracy": history.best_value, "seconds": time.perf_counter() - started}
    print(f"\n{'model':<21}{'parameters':>13}{'input':>7}{'val acc.':>10}{'best':>8}{'seconds':>9}")
    for name, r in results.items():
        print(f"{name:<21}{r['parameters']:>13,}{r['size']:>7}{r['val_accuracy']:>10.2%}"
              f"{r['best_val_accuracy']:>8.2%}{r['seconds']:>9.1f}")
    return results


if __name__ == "__main__":
    main()
