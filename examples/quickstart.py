"""Quickstart: train a small U-Net on synthetic shapes, score it, save it, reload it, predict. No files needed.

    python examples/quickstart.py            # a minute or two on two CPU cores
    python examples/quickstart.py --smoke    # a few seconds: tiny sizes, one epoch
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch.utils.data import DataLoader

import encdec
from encdec.datasets import SyntheticShapes
from encdec.inference import predict
from encdec.training import evaluate, fit


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/quickstart"))
    parser.add_argument("--device", default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, ...")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one epoch")
    args = parser.parse_args(argv)
    n, size, epochs = (32, 32, 1) if args.smoke else (512, 64, 8)

    # --- the public API in a dozen lines -------------------------------------------------------------
    train = DataLoader(SyntheticShapes(n=n, size=size, seed=0), batch_size=16, shuffle=True)
    val = DataLoader(SyntheticShapes(n=64, size=size, seed=1), batch_size=32)
    model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))      # background, circle, square
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-2, total_steps=epochs * len(train))
    history = fit(model, train, val, epochs=epochs, optimizer=optimizer, scheduler=schedule,
                  checkpoint_dir=args.out, overwrite=True,                # a second run replaces the first
                  seed=0, device=args.device)                             # checkpoints, history.json
    scores = evaluate(model, val, device=args.device)                     # pixel accuracy, mIoU, Dice, ...
    encdec.save_weights(model, args.out / "unet.safetensors")            # weights + architecture metadata
    reloaded = encdec.from_pretrained(args.out / "unet.safetensors")     # rebuilt from the file alone
    labels = predict(reloaded, next(iter(val))[0], device=args.device)    # (N, H, W) class indices
    # -------------------------------------------------------------------------------------------------

    print(f"mIoU {scores['miou']:.3f}, pixel accuracy {scores['pixel_accuracy']:.3f} after {len(history)} epochs; "
          f"predicted {tuple(labels.shape)} labels; files in {args.out}/")
    return {"miou": scores["miou"], "pixel_accuracy": scores["pixel_accuracy"]}


if __name__ == "__main__":
    main()
