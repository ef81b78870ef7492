"""CIFAR-10: VGG16 and the ResNet-50 variant from their reference checkpoints, one more epoch, test accuracy.

    python examples/cifar10_classifiers.py --data data \\
        --vgg-weights vgg16_epoch250.ckpt --resnet-weights resnet50_epoch285.ckpt

The reference checkpoints reached about 85-86% (VGG16) and 80-83% (ResNet-50 variant) test accuracy. Each model
is scored on the 10,000 test images, trained one epoch with the reference augmentation (RandomCrop(32, 4) +
horizontal flip), and scored again. ``--data`` is the ``cifar-10-batches-py`` folder or its parent. Without a
checkpoint a model starts from random weights. ``--smoke`` uses a few images (the test suite runs it on generated
batches).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Subset

import encdec
from encdec.cli import main as encdec_command
from encdec.datasets import CIFAR10, presets
from encdec.training import evaluate, fit, recipes, seed_everything

MODELS = {"vgg16_cifar": "vgg_weights", "resnet50_cifar": "resnet_weights"}


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="cifar-10-batches-py or its parent")
    parser.add_argument("--vgg-weights", type=Path, help="reference VGG16 checkpoint, e.g. vgg16_epoch250.ckpt")
    parser.add_argument("--resnet-weights", type=Path, help="reference ResNet-50, e.g. resnet50_epoch285.ckpt")
    parser.add_argument("--out", type=Path, default=Path("runs/cifar10"))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="SGD learning rate (momentum 0.9)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS), help="which to run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="16 images: a fast check of every step")
    parser.add_argument("--recipe", choices=[r for r in recipes.names() if recipes.get(r).data == "cifar10"],
                        help="run a course report's recipe instead (encdec train --recipe; see encdec recipes)")
    args = parser.parse_args(argv)
    if args.recipe:
        smoke = ["--epochs", "1", "--size", "32", "--limit", "4", "--batch-size", "2", "--workers", "0",
                 "--quiet", "--no-plots"] if args.smoke else []
        code = encdec_command(["train", "--recipe", args.recipe, "--data", f"cifar10:{args.data}", "--out",
                               str(args.out), *smoke])
        if code:
            raise SystemExit(code)
        return {}
    workers = 0 if args.smoke else 2

    seed_everything(0)
    train = CIFAR10(args.data, train=True, transform=presets.cifar_train())
    test = CIFAR10(args.data, train=False, transform=presets.cifar_eval())
    class_names = test.class_names
    if args.smoke:
        train, test = Subset(train, range(min(16, len(train)))), Subset(test, range(min(16, len(test))))
    batch_size = min(args.batch_size, len(train))
    train_loader = DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=workers,
                              drop_last=len(train) > batch_size)
    test_loader = DataLoader(test, batch_size=256, num_workers=workers)

    results: Dict[str, Dict[str, float]] = {}
    for name in args.models:
        option = MODELS[name]
        checkpoint = getattr(args, option)
        model = encdec.create_model(name, num_classes=10, weights=checkpoint)  # reference keys converted on load
        before = evaluate(model, test_loader, device=args.device)["accuracy"]
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
        started = time.perf_counter()
        fit(model, train_loader, None, epochs=args.epochs, optimizer=optimizer, device=args.device,
            checkpoint_dir=None if args.smoke else args.out / name, overwrite=True, progress=not args.smoke)
        seconds = time.perf_counter() - started
        after = evaluate(model, test_loader, device=args.device)["accuracy"]
        encdec.save_pretrained(model, args.out / name, class_names=class_names, mean=presets.CIFAR10_MEAN,
                               std=presets.CIFAR10_STD)
        source = str(checkpoint) if checkpoint else "random weights"
        results[name] = {"accuracy_before": before, "accuracy_after": after, "train_seconds": seconds}
        print(f"{name} ({source}): test accuracy {before:.2%} -> {after:.2%} after {args.epochs} epoch(s)")
    print(f"\n{'model':<16}{'before':>9}{'after':>9}{'train s':>9}")
    for name, r in results.items():
        print(f"{name:<16}{r['accuracy_before']:>9.2%}{r['accuracy_after']:>9.2%}{r['train_seconds']:>9.1f}")
    return results


if __name__ == "__main__":
    main()
