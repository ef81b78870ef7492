"""The ``paths`` group: every inference path encdec offers and the layout ``fit`` picks, on whatever CPU runs it.

Inference: a briefly trained resnet34_unet at the fast-path size, batch 2 and 8 (quick: 2), timed as fp32 eager
NCHW ``model(x).argmax(1)`` (what a user writes), ``predict(model, x)`` with its defaults, ``predict(...,
compile=True)``, :class:`encdec.OnnxPredictor` in ONNX Runtime and in OpenVINO, and OpenVINO called directly on
the exported file (the runtime a user would pick instead, without encdec's padding and cropping), and the int8
model of ``encdec.quantize`` (OpenVINO + NNCF). Each path's labels are compared with the fp32 eager labels. The
demo's model, trained to confident margins, gets its own int8 rows (:mod:`benchmarks._int8`).

Training layout: one ``fit`` epoch with ``channels_last="auto"`` (the fixed layout rule,
:func:`encdec.runtime.channels_last_rule`, for this CPU's class) against the two fixed layouts, at two sizes; the
row is auto's time over the faster fixed layout's (goal: at most 1.03), so it tells whether the rule holds on the
machine at hand. What ``channels_last="measure"`` would pick, and what that measurement costs, is reported beside.

Example:
    >>> from benchmarks._config import TINY
    >>> rows = bench_paths(TINY)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import importlib.util
import statistics
import time
import warnings
from typing import Any, Callable, Dict, List

import torch
from torch import Tensor, nn

from ._config import Settings
from ._int8 import INT8_GOAL, bench_int8_demo, int8_predictor, missing_int8
from ._models import _fit_epoch, _free, _loader, _synthetic_batches, infer_call
from ._timing import guard, interleave, quantiles, ratio_row, skip_row, value_row

__all__ = ["bench_paths"]

Row = Dict[str, Any]
MODEL = "resnet34_unet"


def bench_paths(settings: Settings) -> List[Row]:
    """Inference paths and the training layout choice (see the module docstring)."""
    rows: List[Row] = []
    rows.extend(guard("paths", f"{MODEL} inference paths", lambda: _inference(settings)))
    gc.collect()
    rows.extend(guard("paths", "demo model int8", lambda: bench_int8_demo(settings)))
    gc.collect()
    rows.extend(guard("paths", f"{MODEL} training layout", lambda: _layouts(settings)))
    return rows


def _trained_model(settings: Settings) -> nn.Module:
    import encdec

    torch.manual_seed(0)
    model = encdec.create_model(MODEL, num_classes=6)
    side = model.valid_size(max(settings.fast_size // 2, 32))
    batch = 4
    xs, ys = _synthetic_batches(model, batch * settings.pretrain_steps, side, seed=11)
    encdec.fit(model, _loader(xs, ys, batch), epochs=1, device="cpu", progress=False, precision="fp32", seed=0,
               optimizer=torch.optim.Adam(model.parameters(), lr=1e-3))
    return model.eval()


def _openvino_direct(path: str, x: Tensor) -> Callable[[], Any]:
    import openvino

    compiled = openvino.Core().compile_model(path, "CPU", {
        "INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY"})
    array = x.numpy()
    output = compiled.output(0)
    return lambda: compiled(array)[output].argmax(1)


def _inference(settings: Settings) -> List[Row]:
    import encdec

    model = _trained_model(settings)
    side = settings.fast_size
    batches = (2,) if settings.quick else (2, 8)
    rows: List[Row] = []
    predictors: Dict[str, Any] = {}
    for backend, module in (("onnxruntime", "onnxruntime"), ("openvino", "openvino")):
        if importlib.util.find_spec(module) is None:
            rows.append(skip_row("paths", f"{backend} predictor", f"{module} is not installed"))
            continue
        predictors[backend] = encdec.OnnxPredictor.from_model(model, backend=backend, input_size=side)
    quantize_seconds = None
    if missing_int8() is None:
        predictors["int8"], quantize_seconds = int8_predictor(model, side, settings)
    else:
        rows.append(skip_row("paths", "int8 predictor", str(missing_int8())))
    count = max(max(batches), settings.agreement_images)
    xa, _ = _synthetic_batches(model, count, side, seed=12)
    with torch.inference_mode():
        fp32 = torch.cat([model(xa[i : i + 2]).argmax(1) for i in range(0, count, 2)])
    compile_seconds = None
    for batch in batches:
        x = xa[:batch]
        shape = f"{batch}x3x{side}x{side}"
        variants: Dict[str, Callable[[], Any]] = {
            "fp32 eager": infer_call(model, x, argmax=True),
            "predict": lambda x=x, b=batch: encdec.predict(model, x, batch_size=b),
        }
        if not settings.quick:  # compiling takes a minute or more: full runs only
            if compile_seconds is None:
                started = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    encdec.predict(model, x, batch_size=batch, compile=True)
                compile_seconds = time.perf_counter() - started
            variants["predict compile=True"] = lambda x=x, b=batch: encdec.predict(model, x, batch_size=b,
                                                                                  compile=True)
        for backend, predictor in predictors.items():
            variants[_label(backend)] = lambda x=x, b=batch, p=predictor: p.predict(x, batch_size=b)
        if "openvino" in predictors:
            variants["OpenVINO direct"] = _openvino_direct(str(predictors["openvino"].path), x)
        times = interleave(variants, **settings.timing())
        for name in variants:
            if name == "fp32 eager":
                continue
            bf16 = encdec.runtime.cpu_supports_bf16()
            goal = None if bf16 else 1.5 if name == "predict" else INT8_GOAL if name == _label("int8") else None
            rows.append(ratio_row("paths", f"{MODEL} {name} vs fp32 eager, batch {batch}", times, "fp32 eager",
                                  name, goal=goal, shape=shape,
                                  notes=f"{shape}; labels of the variant vs the fp32 eager labels below"))
        if "OpenVINO direct" in times:
            best = max((n for n in times if n not in ("fp32 eager", "OpenVINO direct", _label("int8"))),
                       key=lambda n: quantiles([a / b for a, b in zip(times["fp32 eager"], times[n])])["median"])
            ratios = [a / b for a, b in zip(times["OpenVINO direct"], times[best])]
            rows.append(value_row("paths", f"{MODEL} best encdec path vs OpenVINO direct, batch {batch}",
                                  quantiles(ratios)["median"], goal=1.0, kind="ratio",
                                  notes=f"best: {best}; >= 1 means it is at least as fast as OpenVINO fp32 "
                                        "called on the exported file"))
    rows.extend(_agreements(model, xa, fp32, predictors, settings))
    if quantize_seconds is not None:
        rows.append(value_row("paths", f"{MODEL} int8: quantize's held-out agreement",
                              predictors["int8"].report.agreement, goal=0.99, kind="fraction",
                              notes=f"{predictors['int8'].report.summary()}; quantizing took {quantize_seconds:.1f} s "
                                    "(accepted whatever the agreement: this model is trained briefly)"))
    if compile_seconds is not None:
        rows.append(value_row("paths", "predict compile=True: first call (compiling)", compile_seconds,
                              kind="seconds", notes="inductor with frozen weights, warm or cold cache"))
    _free(model, *predictors.values())
    return rows


def _agreements(model: nn.Module, xa: Tensor, fp32: Tensor, predictors: Dict[str, Any],
                settings: Settings) -> List[Row]:
    import encdec

    paths: Dict[str, Callable[[], Tensor]] = {"predict": lambda: encdec.predict(model, xa, batch_size=2)}
    for backend, predictor in predictors.items():
        paths[_label(backend)] = lambda p=predictor: p.predict(xa, batch_size=2)
    rows = []
    for name, run in paths.items():
        agreement = float((run() == fp32).float().mean())
        goal = 0.99 if name == _label("int8") else 0.999
        rows.append(value_row("paths", f"{MODEL} {name}: pixels equal to fp32 eager", agreement, goal=goal,
                              kind="fraction", notes=f"{fp32.numel()} pixels of SyntheticShapes images, model "
                                                     f"trained {settings.pretrain_steps} steps first"))
    return rows


def _label(backend: str) -> str:
    return "QuantizedPredictor int8" if backend == "int8" else f"OnnxPredictor {backend}"


def _layouts(settings: Settings) -> List[Row]:
    import encdec
    from encdec import layout, runtime

    rows: List[Row] = []
    sides = (64, 128) if settings.mode == "tiny" else (64, settings.fast_size)
    batch = 2
    for side in sides:
        torch.manual_seed(0)
        models = {name: encdec.create_model(MODEL, num_classes=6) for name in ("auto", "nchw", "nhwc")}
        xs, ys = _synthetic_batches(models["auto"], batch * settings.fit_batches, side, seed=13)
        loader = _loader(xs, ys, batch)
        shape = (batch, 3, side, side)
        chosen = runtime.resolve_channels_last("auto", models["auto"], torch.device("cpu"), "fp32", train=True,
                                               shape=shape)
        started = time.perf_counter()
        measured = layout.choose_channels_last("measure", models["auto"], torch.device("cpu"), "fp32", shape,
                                               train=True)
        measure_seconds = time.perf_counter() - started
        variants = {}
        for name, flag in (("auto", "auto"), ("nchw", False), ("nhwc", True)):
            optimizer = torch.optim.Adam(models[name].parameters(), lr=1e-4)
            variants[name] = _fit_epoch(models[name], loader, optimizer, precision="fp32", channels_last=flag)
        times = interleave(variants, **settings.timing())
        best = min(("nchw", "nhwc"), key=lambda n: statistics.median(times[n]))
        ratios = [a / b for a, b in zip(times["auto"], times[best])]
        q = quantiles(ratios)
        rows.append(value_row(
            "paths", f"fit channels_last='auto' time / faster fixed layout, {side}x{side}", q["median"],
            goal=1.03, higher_is_better=False, kind="ratio", q25=q["q25"], q75=q["q75"],
            notes=f"auto (the rule, CPU class {runtime.cpu_class()}) chose {'channels_last' if chosen else 'NCHW'}; "
                  f"faster fixed: {best}; 'measure' chose {'channels_last' if measured else 'NCHW'} "
                  f"(NCHW/NHWC time {statistics.median(times['nchw']) / statistics.median(times['nhwc']):.2f}); "
                  f"{settings.fit_batches} batches of {batch}x3x{side}x{side} per epoch; measuring took "
                  f"{measure_seconds:.1f} s"))
        _free(*models.values())
    return rows
