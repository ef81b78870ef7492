"""The ``tiling`` group: tiled prediction of a large image, its peak memory and its agreement with untiled.

* Peak memory: the reference-size U-Net (``encdec.unet()``, 22 classes) predicts a 4096x4096 image with
  ``tile=512`` (tiny: a small U-Net, 512x512 with ``tile=128``) in a fresh process; the row is the process's peak
  resident memory during ``predict`` minus its resident memory just before (model and image loaded; goal: under
  1.5 GB).
* Agreement: a U-Net briefly trained on SyntheticShapes predicts one 2048x2048 SyntheticShapes image (tiny: 256)
  untiled and with ``tile=512, overlap=0.25``; the row is the share of equal labels (goal: >= 99%).

Example:
    >>> from benchmarks._config import TINY
    >>> rows = bench_tiling(TINY)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any, Dict, List

import torch

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


def _agreement(settings: Settings) -> List[Row]:
    import encdec

    tiny = settings.mode == "tiny"
    side, tile = (256, 128) if tiny else (2048, 512)
    torch.manual_seed(0)
    model = encdec.unet(num_classes=4, widths=(16, 32, 64, 128, 256))
    xs, ys = _synthetic_batches(model, 4 * max(settings.pretrain_steps, 1), 128, seed=21)
    encdec.fit(model, _loader(xs, ys, 4), epochs=1, device="cpu", progress=False, precision="fp32", seed=0,
               optimizer=torch.optim.Adam(model.parameters(), lr=2e-3))
    model.eval()
    image, _ = _synthetic_batches(model, 1, side, seed=22)
    untiled = encdec.predict(model, image, precision="fp32", batch_size=1)
    tiled = encdec.predict(model, image, precision="fp32", tile=tile, overlap=0.25, batch_size=2)
    agreement = float((untiled == tiled).float().mean())
    return [value_row("tiling", f"tiled labels equal to untiled, {side}x{side}, tile {tile}", agreement,
                      goal=0.99, kind="fraction",
                      notes=f"unet(widths=(16, ..., 256)) trained {settings.pretrain_steps} steps on 128x128 "
                            "SyntheticShapes; overlap 0.25")]
