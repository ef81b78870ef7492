"""``encdec demo``: train a U-Net on synthetic shapes and show that it learned."""

from __future__ import annotations

import argparse

from .. import demo
from ._common import FORMAT, at_least, device, positive

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train a U-Net on synthetic shapes and show it learned", formatter_class=FORMAT,
                       description=(
        "Build a small U-Net, score it, train it with fit() on synthetic shapes (a minute or two on two CPU\n"
        "cores), score it again, write metrics.json, history.png, predictions.png and a .safetensors file, then\n"
        "reload that file and check the predictions are identical. Fails if mIoU stays below 0.8.\n\n"
        "examples:\n  encdec demo\n  encdec demo --out /tmp/demo --quick"))
    p.add_argument("--out", default="demo-output", metavar="DIR", help="output folder (default demo-output)")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run at tiny sizes (no mIoU goal)")
    p.add_argument("--epochs", type=positive(), help="override the number of epochs")
    p.add_argument("--images", type=positive(), help="override the number of training images")
    p.add_argument("--seed", type=at_least(0), default=0)
    p.add_argument("--device", type=device, default="cpu", help="cpu (default), auto, cuda, ...")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = demo.QUICK if args.quick else demo.FULL
    config = demo.with_overrides(config, epochs=args.epochs, train_images=args.images)
    demo.run_demo(args.out, config=config, seed=args.seed, device=args.device, progress=not args.quiet)
    return 0
