"""The ``tiling`` group: tiled prediction of a large image, its peak memory and its agreement with untiled.

* Peak memory: the reference-size U-Net (``encdec.unet()``, 22 classes) predicts a 4096x4096 image with
  ``tile=512`` (tiny: a small U-Net, 512x512 with ``tile=128``) in a fresh process; the row is the process's peak
  resident memory during ``predict`` minus its resident memory just before (model and image loaded; goal: under
  1.5 GB).
* Agreement: a U-Net on a ResNet-18 encoder, trained on 64x64 SyntheticShapes until its predictions are
  confident, predicts a 2048x2048 image (tiny: 256) made of a grid of 64x64 SyntheticShapes images (objects at
  the scale it learned) untiled and with ``tile=512, overlap=0.25``; the row is the share of equal labels (goal:
  >= 99%), with the share among pixels the untiled prediction does not leave to a near tie in the notes. A
  second row (no goal) does the same with the reference U-Net's layout, whose bilinear ``align_corners=True``
  upsampling samples at positions that depend on the whole image's size, so no tiling can reproduce its untiled
  output exactly.

Example:
    >>> from benchmarks._config import TINY
    >>> rows = bench_tiling(TINY)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any, Dict, List, Tuple

import torch
from torch import Tensor

from ._config import Settings
from ._models import _loader, _synthetic_batches
from ._timing import guard, value_row

__all__ = ["bench_tiling"]

Row = Dict[str, Any]

_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    import numpy as np, torch, encdec
    side, tile, widths = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
    torch.manual_seed(0)
    model = (encdec.unet(widths=tuple(widths)) if widths else encdec.unet()).eval()
    y, x = np.mgrid[0:side, 0:side]
    image = np.stack([(x * 7 + y * 3) % 256, (x * y) % 256, (x + y * 5) % 256], axis=-1).astype(np.uint8)
    with open("/proc/self/statm") as handle:  # resident now (pages), before predict allocates anything
        before = int(handle.read().split()[1]) * resource.getpagesize() / 1024
    started = time.perf_counter()
    labels = encdec.predict(model, image, tile=tile, overlap=0.25, batch_size=2)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"extra_mb": (peak - before) / 1024, "seconds": seconds, "shape": list(labels.shape)}))
""")


def bench_tiling(settings: Settings) -> List[Row]:
    """Peak memory of tiled prediction and its agreement with untiled prediction (see the module docstring)."""
    rows: List[Row] = []
    rows.extend(guard("tiling", "tiled prediction memory", lambda: _memory(settings)))
    rows.extend(guard("tiling", "tiled prediction agreement", lambda: _agreement(settings)))
    return rows


def _memory(settings: Settings) -> List[Row]:
    tiny = settings.mode == "tiny"
    side, tile, widths = (512, 128, [8, 16, 32, 64, 128]) if tiny else (4096, 512, [])
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(side), str(tile), json.dumps(widths)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe failed: {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    model = "unet(widths=(8, ..., 128))" if tiny else "unet() (the VOC reference, 22 classes)"
    return [value_row("tiling", f"peak extra memory, {side}x{side} image, tile {tile}", result["extra_mb"],
                      goal=1536.0, higher_is_better=False, kind="MB",
                      notes=f"{model}, overlap 0.25, 2 tiles per batch, fp32 labels; peak resident memory of a "
                            "fresh process during predict minus its resident memory before; took "
                            f"{result['seconds']:.0f} s")]


def _mosaic(model: Any, side: int, scale: int) -> Tuple[Tensor, Tensor]:
    """A ``side`` x ``side`` image (1, 3, side, side) and its mask: a grid of ``scale``-pixel SyntheticShapes
    images, so its objects are as large as those the model was trained on, however large the image."""
    n = side // scale
    images, masks = _synthetic_batches(model, n * n, scale, seed=22)
    image = images.view(n, n, 3, scale, scale).permute(2, 0, 3, 1, 4).reshape(1, 3, side, side)
    return image, masks.view(n, n, scale, scale).permute(0, 2, 1, 3).reshape(side, side)


def _agreement(settings: Settings) -> List[Row]:
    import encdec

    tiny = settings.mode == "tiny"
    side, tile, scale = (256, 128, 32) if tiny else (2048, 512, 64)
    models = [("unet(encoder='resnet18')", lambda: encdec.unet(num_classes=4, encoder="resnet18"), 0.99)]
    if not tiny:  # the reference U-Net's upsampling is not shift-equivariant: a row to show it, without a goal
        models.append(("unet(widths=(16, ..., 256)), bilinear align_corners=True upsampling",
                       lambda: encdec.unet(num_classes=4, widths=(16, 32, 64, 128, 256)), None))
    rows = []
    for label, build, goal in models:
        torch.manual_seed(0)
        model = build()
        steps = settings.tiling_steps
        xs, ys = _synthetic_batches(model, 16 * steps, scale, seed=21)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 1e-2, total_steps=steps)
        encdec.fit(model, _loader(xs, ys, 16), epochs=1, device="cpu", progress=False, precision="fp32", seed=0,
                   optimizer=optimizer, scheduler=schedule)
        model.eval()
        image, mask = _mosaic(model, side, scale)
        probs = encdec.predict(model, image, precision="fp32", batch_size=1, probabilities=True)[0]
        untiled = probs.argmax(0)
        tiled = encdec.predict(model, image, precision="fp32", tile=tile, overlap=0.25, batch_size=2)[0]
        equal = untiled == tiled
        top2 = probs.topk(2, dim=0).values
        clear = top2[0] - top2[1] > 0.1  # pixels the untiled prediction does not leave to a near tie
        rows.append(value_row(
            "tiling", f"tiled labels equal to untiled, {side}x{side}, tile {tile}, {label}",
            float(equal.float().mean()), goal=goal, kind="fraction",
            notes=f"overlap 0.25; trained {steps} steps of 16 {scale}x{scale} SyntheticShapes (fp32); the image is "
                  f"a grid of {scale}x{scale} SyntheticShapes images; equal where the untiled top-2 margin > 0.1 "
                  f"({float(clear.float().mean()):.1%} of pixels): {float(equal[clear].float().mean()):.2%}; pixel "
                  f"accuracy untiled {float((untiled == mask).float().mean()):.1%}, tiled "
                  f"{float((tiled == mask).float().mean()):.1%}"))
    return rows
