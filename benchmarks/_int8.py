"""int8 rows of the ``paths`` group: ``encdec.quantize`` (OpenVINO + NNCF) against fp32 eager, ``predict``'s default
and OpenVINO fp32, interleaved in one process, with the share of pixels whose labels equal fp32's.

Two models: the ``paths`` group's briefly trained resnet34_unet (a weak model: int8 is measured, not refused, so
its agreement shows what quantizing a model with near-tied scores costs), and the demo's model
(``encdec demo``: ``unet(widths=(8, ..., 128))`` trained to mIoU about 0.97 on 64x64 SyntheticShapes), the
confident model int8 is for.

Example:
    >>> from benchmarks._config import TINY
    >>> rows = bench_int8_demo(TINY)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ._config import Settings
from ._models import _free, _synthetic_batches, infer_call
from ._timing import interleave, ratio_row, skip_row, value_row

__all__ = ["INT8_GOAL", "bench_int8_demo", "calibration_size", "int8_predictor", "missing_int8"]

Row = Dict[str, Any]
#: int8's goal over fp32 eager on CPUs without native bf16 (issue 26), with >= 99% of pixels equal to fp32.
INT8_GOAL = 3.0


def missing_int8() -> Optional[str]:
    """Why int8 cannot run here (``None`` when OpenVINO and NNCF are installed)."""
    missing = [m for m in ("openvino", "nncf") if importlib.util.find_spec(m) is None]
    return f"{', '.join(missing)} not installed (pip install 'encdec[openvino]')" if missing else None


def calibration_size(settings: Settings) -> int:
    """Calibration images: 64 (32 in quick runs, 4 in tiny ones); a quarter of them is held out."""
    return {"full": 64, "quick": 32}.get(settings.mode, 4)


def int8_predictor(model: nn.Module, side: int, settings: Settings, seed: int = 14) -> Tuple[Any, float]:
    """``encdec.quantize`` on SyntheticShapes images at ``side`` (accepted whatever the agreement: it is what the
    rows report); returns the predictor and the seconds quantizing took."""
    import time
    import warnings

    import encdec

    images, _ = _synthetic_batches(model, calibration_size(settings), side, seed=seed)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = encdec.quantize(model, images, on_low_agreement="warn", fallback=False)
    return predictor, time.perf_counter() - started


def _demo_model(settings: Settings) -> Tuple[nn.Module, Dict[str, Any]]:
    """The demo's model, trained by ``encdec.demo.run_demo`` (its full settings except in tiny runs)."""
    import encdec
    from encdec import demo

    config = demo.QUICK if settings.mode == "tiny" else demo.with_overrides(demo.FULL, goal_miou=None)
    with tempfile.TemporaryDirectory(prefix="encdec-bench-demo-") as folder:
        result = demo.run_demo(folder, config=config, progress=False, log=lambda line: None)
        model = encdec.from_pretrained(result["files"]["weights"])
    return model.eval(), result


def bench_int8_demo(settings: Settings) -> List[Row]:
    """The demo's model: fp32 eager, ``predict``'s default, OpenVINO fp32 and int8, at batch 2 and 8 (quick: 8)."""
    import encdec

    reason = missing_int8()
    if reason is not None:
        return [skip_row("paths", "demo model int8", reason)]
    model, trained = _demo_model(settings)
    side = int(trained["config"]["size"])
    name = "demo unet"
    int8, seconds = int8_predictor(model, side, settings, seed=21)
    fp32_ov = encdec.OnnxPredictor.from_model(model, backend="openvino", input_size=side)
    count = max(8, settings.agreement_images * 8)
    xa, ya = _synthetic_batches(model, count, side, seed=22)
    with torch.inference_mode():
        fp32 = torch.cat([model(xa[i : i + 8]).argmax(1) for i in range(0, count, 8)])
    labels = int8.predict(xa, batch_size=8)
    shape = f"3x{side}x{side}"
    rows: List[Row] = []
    for batch in ((8,) if settings.quick else (2, 8)):
        x = xa[:batch]
        variants = {
            "fp32 eager": infer_call(model, x, argmax=True),
            "predict": lambda x=x, b=batch: encdec.predict(model, x, batch_size=b),
            "OpenVINO fp32": lambda x=x, b=batch: fp32_ov.predict(x, batch_size=b),
            "int8": lambda x=x, b=batch: int8.predict(x, batch_size=b),
        }
        times = interleave(variants, **settings.timing())
        bf16 = encdec.runtime.cpu_supports_bf16()
        for variant in ("predict", "OpenVINO fp32", "int8"):
            goal = INT8_GOAL if variant == "int8" and not bf16 else None
            rows.append(ratio_row("paths", f"{name} {variant} vs fp32 eager, batch {batch}", times, "fp32 eager",
                                  variant, goal=goal, shape=f"{batch}x{shape}", notes=f"{batch}x{shape}"))
        rows.append(ratio_row("paths", f"{name} int8 vs predict default, batch {batch}", times, "predict", "int8",
                              shape=f"{batch}x{shape}",
                              notes=f"predict's default precision here: {'bf16' if bf16 else 'fp32'}"))
    rows.append(value_row("paths", f"{name} int8: pixels equal to fp32 eager", float((labels == fp32).float().mean()),
                          goal=0.99, kind="fraction",
                          notes=f"{fp32.numel()} pixels of {count} fresh SyntheticShapes images; quantize's own "
                                f"held-out agreement {int8.report.agreement:.4f} ({int8.report.summary()}); "
                                f"quantizing took {seconds:.1f} s"))
    for variant, got in (("fp32", fp32), ("int8", labels)):
        rows.append(value_row("paths", f"{name} {variant} pixel accuracy", float((got == ya).float().mean()),
                              kind="fraction", notes=f"demo mIoU after training {trained['miou']:.4f}"))
    _free(model, int8, fp32_ov)
    return rows
