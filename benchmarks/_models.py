"""Model benchmarks: every builder vs its reference restatement, the fast path, every smp class encdec builds,
``fit`` overhead.

The reference restatements are the test-only modules in ``tests/reference`` (module names equal to the
reference checkpoints' keys); each comparison loads the same randomised weights into both models through
``encdec.load_weights``, exactly as a user's checkpoint would be loaded, and checks the outputs agree before
timing anything.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import os
import tempfile
import zlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._config import Settings
from ._timing import (
    guard,
    interleave,
    matmul_gflops,
    onednn_matmul_gflops,
    quantiles,
    ratio_row,
    skip_row,
    value_row,
)

__all__ = ["bench_builders", "bench_fast_path", "bench_smp", "bench_fit_overhead", "count_train_flops"]

#: Builders whose fp32 training GFLOP/s must reach 75% of the fp32 matmul peak (issue 6).
UNET_NAMES = ("unet", "unet_pet", "resnet34_unet", "resnet50_unet")
FLOP_FRACTION_GOAL = 0.75

Row = Dict[str, Any]


# ---------------------------------------------------------------------------------------------- helpers


def _reference_package() -> Any:
    """``tests.reference`` (the repository's test-only restatements); ImportError outside a checkout."""
    from tests import reference

    return reference


def _seed(name: str) -> int:
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _task(name: str) -> str:
    import encdec

    return encdec.model_info(name).task


def _builder_kwargs(name: str, settings: Settings) -> Dict[str, Any]:
    return {"input_size": settings.resfcn_input} if name == "resfcn18" else {}


def _input_side(name: str, settings: Settings) -> int:
    if name in ("vgg16_cifar", "resnet50_cifar", "custom_cnn"):
        return 32
    if name == "resnet18_classifier":
        return settings.resnet18_size
    if name == "resfcn18":
        return settings.resfcn_input
    return settings.seg_size


def _batch(name: str, settings: Settings) -> int:
    return settings.seg_batch if _task(name) == "segmentation" else settings.cls_batch


def make_pair(name: str, kwargs: Dict[str, Any], side: int, batch: int) -> Tuple[nn.Module, nn.Module, float]:
    """The reference restatement with seeded random weights and BN statistics, and the encdec builder's model
    with the same weights loaded through ``encdec.load_weights``; plus the max abs difference of their eval-mode
    outputs on one batch.

    Example:
        >>> ref, model, diff = make_pair("custom_cnn", {}, 32, 2)  # doctest: +SKIP
    """
    import encdec

    reference = _reference_package()
    seed = _seed(name)
    gen = torch.Generator().manual_seed(seed)
    ref = reference.REFERENCES[name](**kwargs)
    calib = torch.randn(max(batch, 2), 3, side, side, generator=gen)
    reference.randomize_(ref, seed=seed, calibration_input=calib)
    model = encdec.create_model(name, **kwargs)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.pth")
        torch.save(ref.state_dict(), path)
        encdec.load_weights(model, path, strict=True)
    ref.eval()
    model.eval()
    x = torch.randn(batch, 3, side, side, generator=gen)
    with torch.inference_mode():
        diff = float((ref(x) - model(x)).abs().max())
    return ref, model, diff


def _targets(model: nn.Module, batch: int, side: int, task: str, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    classes = int(getattr(model, "num_classes", 2))
    shape = (batch, side, side) if task == "segmentation" else (batch,)
    return torch.randint(0, classes, shape, generator=gen)


def _autocast(precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(
    model: nn.Module, x: Tensor, y: Tensor, optimizer: torch.optim.Optimizer, *, precision: str = "fp32",
    channels_last: bool = False,
) -> Callable[[], None]:
    """One hand-written training step (zero grads, forward, float32 cross entropy, backward, optimizer step).

    Example:
        >>> m = nn.Conv2d(3, 2, 1)
        >>> step = train_step(m, torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long),
        ...                   torch.optim.SGD(m.parameters(), lr=0.1))
        >>> step()
    """
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        model.train()
        _hand_step(model, optimizer, x, y, precision)

    return step


def _hand_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, precision: str) -> None:
    optimizer.zero_grad(set_to_none=True)
    with _autocast(precision):
        out = model(x)
    F.cross_entropy(out.float(), y).backward()
    optimizer.step()


def infer_call(
    model: nn.Module, x: Tensor, *, precision: str = "fp32", channels_last: bool = False, argmax: bool = False
) -> Callable[[], Tensor]:
    """One eval-mode forward pass under ``torch.inference_mode`` (optionally with the per-pixel argmax).

    Example:
        >>> infer_call(nn.Conv2d(3, 2, 1), torch.randn(1, 3, 4, 4), argmax=True)().shape
        torch.Size([1, 4, 4])
    """
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    model.eval()

    def call() -> Tensor:
        with torch.inference_mode(), _autocast(precision):
            out = model(x)
            return out.argmax(1) if argmax else out

    return call


def count_train_flops(step: Callable[[], None]) -> int:
    """FLOPs of one call of ``step`` as ``torch.utils.flop_counter`` counts them (matmuls and convolutions,
    forward and backward).

    Example:
        >>> m = nn.Linear(8, 4)
        >>> count_train_flops(lambda: m(torch.randn(2, 8)).sum().backward())  # forward 2*2*8*4, weight grad same
        256
    """
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def _free(*objects: Any) -> None:
    del objects
    gc.collect()


# ---------------------------------------------------------------------------------------------- builders


def bench_builders(settings: Settings) -> List[Row]:
    """Every builder vs its reference restatement, same weights, default settings (fp32, contiguous, eager):
    one training step and one inference pass (goal >= 1.0x each), plus the achieved training GFLOP/s as a
    fraction of the fp32 matmul peak timed alongside (goal >= 0.75 for the U-Nets).

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_builders(TINY)  # doctest: +SKIP
    """
    try:
        _reference_package()
    except ImportError as error:
        return [skip_row("builders", "all builders", f"tests.reference does not import ({error}); run from the "
                         "repository root")]
    rows: List[Row] = []
    for name in settings.builders:
        rows.extend(guard("builders", name, lambda name=name: _bench_builder(name, settings)))
        gc.collect()
    return rows


def _bench_builder(name: str, settings: Settings) -> List[Row]:
    kwargs = _builder_kwargs(name, settings)
    side, batch, task = _input_side(name, settings), _batch(name, settings), _task(name)
    print(f"  builders: {name} at {batch}x3x{side}x{side}", flush=True)
    ref, model, diff = make_pair(name, kwargs, side, batch)
    gen = torch.Generator().manual_seed(_seed(name) + 1)
    x = torch.randn(batch, 3, side, side, generator=gen)
    y = _targets(model, batch, side, task, _seed(name) + 2)
    shape = f"{batch}x3x{side}x{side}" + (f", input_size={kwargs['input_size']}" if kwargs else "")
    same = f"same weights, max |output diff| {diff:.1e}"

    # training step, with the fp32 matmul peak timed alongside for the FLOP fractions
    opt_ref = torch.optim.SGD(ref.parameters(), lr=1e-4, momentum=0.9)
    opt_enc = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    step_enc = train_step(model, x, y, opt_enc)
    flops = count_train_flops(step_enc)
    variants: Dict[str, Callable[[], Any]] = {"reference": train_step(ref, x, y, opt_ref), "encdec": step_enc}
    model_cl: Optional[nn.Module] = None
    if name in UNET_NAMES:  # what fit(precision="fp32") runs: channels_last on
        model_cl = copy.deepcopy(model)
        opt_cl = torch.optim.SGD(model_cl.parameters(), lr=1e-4, momentum=0.9)
        variants["encdec channels_last"] = train_step(model_cl, x, y, opt_cl, channels_last=True)
    peaks = {"matmul (torch.mm)": matmul_gflops(settings.matmul_n)}
    onednn = onednn_matmul_gflops(settings.matmul_n)
    if onednn is not None:
        peaks["matmul (oneDNN)"] = onednn
    times = interleave({**variants, **peaks}, **settings.timing())
    rows = [ratio_row("builders", f"{name} train step", times, "reference", "encdec", goal=1.0,
                      notes=f"fp32, {shape}", shape=shape)]
    mm_flops = 2.0 * settings.matmul_n**3
    peak = [max(mm_flops / times[k][i] for k in peaks) for i in range(len(times["encdec"]))]
    peak_note = ", ".join(f"{k} {quantiles([mm_flops / t for t in times[k]])['median'] / 1e9:.0f}" for k in peaks)
    goal = FLOP_FRACTION_GOAL if name in UNET_NAMES else None
    for label, key in (("fp32", "encdec"), ("fp32 channels_last", "encdec channels_last")):
        if key not in times:
            continue
        achieved = [flops / t for t in times[key]]
        fractions = quantiles([a / p for a, p in zip(achieved, peak)])
        gflops = quantiles(achieved)["median"] / 1e9
        rows.append(value_row(
            "flops", f"{name} train {label}", fractions["median"], goal=goal, kind="fraction", q25=fractions["q25"],
            q75=fractions["q75"], gflops=gflops, peak_gflops=quantiles(peak)["median"] / 1e9,
            train_gflop=flops / 1e9, shape=shape,
            notes=f"{shape}: {flops / 1e9:.1f} GFLOP/step, {gflops:.0f} GFLOP/s; fp32 matmul peak "
                  f"{quantiles(peak)['median'] / 1e9:.0f} GFLOP/s ({peak_note}; n={settings.matmul_n})",
        ))
    _free(model_cl)

    # inference
    times = interleave({"reference": infer_call(ref, x), "encdec": infer_call(model, x)}, **settings.timing())
    rows.append(ratio_row("builders", f"{name} inference", times, "reference", "encdec", goal=1.0,
                          notes=f"fp32, {shape}; {same}", max_abs_diff=diff, shape=shape))
    _free(ref, model, opt_ref, opt_enc)
    return rows


# ---------------------------------------------------------------------------------------------- fast path


class _NoMetrics:
    """A ``metrics`` object for ``fit`` that does nothing (isolates the loop's own overhead)."""

    def update(self, logits: Tensor, target: Tensor) -> None:
        pass

    def compute(self) -> Dict[str, float]:
        return {}

    def reset(self) -> None:
        pass

    def sync(self) -> None:
        pass


def _loader(x: Tensor, y: Tensor, batch: int) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def _hand_epoch(
    model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer, precision: str, channels_last: bool
) -> Callable[[], None]:
    """What a user writes by hand: one epoch of zero_grad / forward / loss / backward / step."""
    if channels_last:
        model.to(memory_format=torch.channels_last)

    def epoch() -> None:
        model.train()
        for images, targets in loader:
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            _hand_step(model, optimizer, images, targets, precision)

    return epoch


def _fit_epoch(model: nn.Module, loader: Any, optimizer: torch.optim.Optimizer, **kwargs: Any) -> Callable[[], None]:
    from encdec.training import fit

    def epoch() -> None:
        fit(model, loader, epochs=1, optimizer=optimizer, device="cpu", progress=False, **kwargs)

    return epoch


def _fast_targets() -> Tuple[Any, Any, Any, str]:
    from encdec.inference import optimize_for_inference, predict
    from encdec.training import fit, resolve_precision

    return fit, predict, optimize_for_inference, resolve_precision("auto", torch.device("cpu"))


def bench_fast_path(settings: Settings) -> List[Row]:
    """``fit`` / ``predict`` with ``precision="auto"``, channels_last and ``optimize_for_inference`` vs the
    reference restatement in fp32 eager (goals: training >= 2.0x, inference >= 2.5x, >= 99.5% of predicted pixels
    equal to the reference's fp32 prediction).

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_fast_path(TINY)  # doctest: +SKIP
    """
    try:
        _reference_package()
        _fast_targets()
    except ImportError as error:
        return [skip_row("fast_path", "fast path", f"target does not import yet: {error}")]
    rows: List[Row] = []
    for name in settings.fast_path_models:
        rows.extend(guard("fast_path", name, lambda name=name: _bench_fast(name, settings)))
        gc.collect()
    return rows


def _synthetic_batches(model: nn.Module, count: int, side: int, seed: int) -> Tuple[Tensor, Tensor]:
    """``count`` SyntheticShapes images and masks at ``side`` (at most 6 classes; the rest stay unused)."""
    from encdec.datasets import SyntheticShapes

    data = SyntheticShapes(n=count, size=side, num_classes=min(int(model.num_classes), 6), seed=seed)
    images, masks = zip(*(data[i] for i in range(count)))
    return torch.stack(images), torch.stack(masks)


def _bench_fast(name: str, settings: Settings) -> List[Row]:
    fit, predict, optimize_for_inference, auto = _fast_targets()
    side, batch = settings.fast_size, settings.fast_path_batch
    print(f"  fast path: {name} at {batch}x3x{side}x{side}, precision auto = {auto}", flush=True)
    ref, model, diff = make_pair(name, {}, side, batch)
    shape = f"{batch}x3x{side}x{side}"
    rows: List[Row] = []

    # Random weights are chaotic (a 0.1% input change flips percents of the argmax labels even in fp32), so
    # the agreement is measured on a briefly trained model: fit on SyntheticShapes at a small size first.
    pre_side = model.valid_size(side // 2)
    pre_batch = 4 if pre_side >= 128 else 8
    xs, ys = _synthetic_batches(model, pre_batch * settings.pretrain_steps, pre_side, seed=_seed(name))
    fit(model, _loader(xs, ys, pre_batch), epochs=1, device="cpu", progress=False, precision="auto", seed=0)

    # training: fit(precision="auto") vs a hand-written fp32 eager loop on the reference, same batches
    xs, ys = _synthetic_batches(model, batch * settings.fit_batches, side, seed=_seed(name) + 1)
    loader = _loader(xs, ys, batch)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-4)
    opt_enc = torch.optim.Adam(model.parameters(), lr=1e-4)
    variants: Dict[str, Callable[[], Any]] = {
        "reference fp32 eager": _hand_epoch(ref, loader, opt_ref, "fp32", False),
        "encdec fit": _fit_epoch(model, loader, opt_enc, precision="auto"),
    }
    ref_cl: Optional[nn.Module] = None
    if settings.details and auto == "bf16":
        ref_cl = copy.deepcopy(ref)
        opt_cl = torch.optim.Adam(ref_cl.parameters(), lr=1e-4)
        variants["reference channels_last + bf16"] = _hand_epoch(ref_cl, loader, opt_cl, "bf16", True)
    times = interleave(variants, **settings.timing())
    rows.append(ratio_row("fast_path", f"{name} training", times, "reference fp32 eager", "encdec fit",
                          goal=2.0, notes=f"fit(precision='auto'={auto}), Adam, {settings.fit_batches} batches of "
                                          f"{shape} per timed epoch{_alone(times)}", shape=shape))
    _free(ref_cl)

    # inference: predict on the optimized copy vs the reference's fp32 eager argmax
    count = max(batch, settings.agreement_images)
    xa, _ = _synthetic_batches(model, count, side, seed=_seed(name) + 2)
    xt = xa[:batch]
    model.eval()
    with torch.inference_mode():
        model.to(memory_format=torch.contiguous_format)
        fp32_labels = torch.cat([model(xa[i : i + batch]).argmax(1) for i in range(0, count, batch)])
    fast = optimize_for_inference(model)
    fast_labels = predict(fast, xa, precision="auto", batch_size=batch)
    agreement = float((fast_labels == fp32_labels).float().mean())
    variants = {
        "reference fp32 eager": infer_call(ref, xt, argmax=True),
        "encdec fast path": lambda: predict(fast, xt, precision="auto", batch_size=batch),
    }
    if settings.details and auto == "bf16":
        ref_cl = copy.deepcopy(ref)
        variants["reference channels_last + bf16"] = infer_call(ref_cl, xt, precision="bf16", channels_last=True,
                                                                argmax=True)
    times = interleave(variants, **settings.timing())
    rows.append(ratio_row("fast_path", f"{name} inference", times, "reference fp32 eager", "encdec fast path",
                          goal=2.5, notes=f"predict(optimize_for_inference(m), precision='auto'={auto}), "
                                          f"{shape}{_alone(times)}", shape=shape))
    rows.append(value_row(
        "fast_path", f"{name} pixels equal to fp32", agreement, goal=0.995, kind="fraction",
        notes=f"predict's labels vs the fp32 eager labels of the same weights ({count * side * side} pixels of "
              f"SyntheticShapes images, after {settings.pretrain_steps} fit steps of "
              f"{pre_batch}x3x{pre_side}x{pre_side}; encdec fp32 = reference fp32, max |diff| {diff:.1e} "
              "before training)"))
    _free(ref, model, fast, ref_cl)
    return rows


def _alone(times: Dict[str, List[float]]) -> str:
    """The reference's own speed-up from channels_last + bf16 autocast, when that variant was timed."""
    if "reference channels_last + bf16" not in times:
        return ""
    alone = quantiles([a / b for a, b in zip(times["reference fp32 eager"],
                                              times["reference channels_last + bf16"])])["median"]
    return f"; channels_last + bf16 alone on the reference: x{alone:.2f}"


# ---------------------------------------------------------------------------------------------- smp


#: (encdec builder, smp class) pairs compared; encoders per run mode in ``_smp_encoders``.
SMP_PAIRS = (("unet", "Unet"), ("fpn", "FPN"), ("deeplabv3plus", "DeepLabV3Plus"), ("linknet", "Linknet"),
             ("pspnet", "PSPNet"), ("deeplabv3", "DeepLabV3"), ("unetplusplus", "UnetPlusPlus"), ("manet", "MAnet"),
             ("pan", "PAN"), ("upernet", "UPerNet"), ("segformer", "Segformer"))
#: (encdec builder, smp class, smp encoder) pairs compared on their own encoder family, once per run.
SMP_OWN_ENCODERS = (("segformer", "Segformer", "mit_b0"), ("dpt", "DPT", "tu-vit_tiny_patch16_224"))


def _smp_encoders(settings: Settings) -> Tuple[str, ...]:
    return ("resnet18", "resnet34", "resnet50") if settings.mode == "full" else ("resnet34",)


def bench_smp(settings: Settings) -> List[Row]:
    """Each encdec builder of :data:`SMP_PAIRS` vs its segmentation_models_pytorch class on ResNet encoders, and
    ``segformer`` on ``mit_b0`` and ``dpt`` on a ViT (:data:`SMP_OWN_ENCODERS`), the encdec model loaded from a
    file of smp's weights (its smp key conversion): the output difference (goal <= 1e-5) and the speed ratio in
    fp32 (contiguous) and on the fast path (channels_last + the auto precision for both; encdec also through
    ``optimize_for_inference``), for inference and a training step. Goal >= 1.0x each.

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_smp(TINY)  # doctest: +SKIP
    """
    try:
        import segmentation_models_pytorch as smp
    except ImportError as error:
        return [skip_row("smp", "smp", f"segmentation_models_pytorch is not installed ({error}); "
                         "pip install 'encdec[bench]'")]
    rows: List[Row] = []
    pairs = [(b, c, e) for e in _smp_encoders(settings) for b, c in SMP_PAIRS] + list(SMP_OWN_ENCODERS)
    for builder, cls_name, encoder in pairs:
        rows.extend(guard("smp", f"smp {cls_name}", lambda b=builder, c=cls_name, e=encoder:
                          _bench_smp(smp, b, c, e, settings)))
    return rows


def _bench_smp(smp: Any, builder: str, cls_name: str, encoder: str, settings: Settings) -> List[Row]:
    import tempfile

    import encdec
    from encdec.models.smp_config import smp_encoder

    side, batch, classes = settings.fast_size, settings.fast_batch, 2
    label = f"{builder}(encoder={smp_encoder(encoder)!r})"
    print(f"  smp: {cls_name}({encoder!r}) at {batch}x3x{side}x{side}", flush=True)
    torch.manual_seed(0)
    # timm builds ViTs for 224x224 only unless asked; encdec builds them to take any size
    options = {"dynamic_img_size": True} if cls_name == "DPT" else {}
    theirs = getattr(smp, cls_name)(encoder, encoder_weights=None, classes=classes, **options)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/smp.pth"
        torch.save(theirs.state_dict(), path)
        ours = encdec.create_model(builder, encoder=smp_encoder(encoder), num_classes=classes, weights=path)
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(batch, 3, side, side, generator=gen)
    y = torch.randint(0, classes, (batch, side, side), generator=gen)
    theirs.eval()
    ours.eval()
    with torch.inference_mode():
        diff = float((theirs(x) - ours(x)).abs().max())
    shape = f"{batch}x3x{side}x{side}"
    rows: List[Row] = [value_row("smp", f"{label} output vs smp {cls_name}, same weights", diff, goal=1e-5,
                                 kind="max_abs_diff", higher_is_better=False, notes=f"fp32 eval, {shape}")]
    _, _, optimize_for_inference, auto = _fast_targets()
    steps = (("fp32", "fp32", False), ("fast path", auto, True))
    for mode, precision, cl in steps:
        a, b = copy.deepcopy(theirs), copy.deepcopy(ours)
        times = interleave({
            "smp": infer_call(a, x, precision=precision, channels_last=cl),
            "encdec": infer_call(optimize_for_inference(b) if cl else b, x, precision=precision, channels_last=cl),
        }, **settings.timing())
        what = "channels_last, encdec via optimize_for_inference" if cl else "contiguous"
        rows.append(ratio_row("smp", f"{label} inference, {mode}", times, "smp", "encdec", goal=1.0,
                              notes=f"{precision}, {what}, {shape}", shape=shape))
        if encoder not in ("resnet18", "resnet50") or settings.details:
            opt_a = torch.optim.SGD(a.parameters(), lr=1e-4, momentum=0.9)
            opt_b = torch.optim.SGD(b.parameters(), lr=1e-4, momentum=0.9)
            times = interleave({
                "smp": train_step(a, x, y, opt_a, precision=precision, channels_last=cl),
                "encdec": train_step(b, x, y, opt_b, precision=precision, channels_last=cl),
            }, **settings.timing())
            rows.append(ratio_row("smp", f"{label} train step, {mode}", times, "smp", "encdec", goal=1.0,
                                  notes=f"{precision}, {'channels_last' if cl else 'contiguous'}, SGD, {shape}",
                                  shape=shape))
            _free(opt_a, opt_b)
        _free(a, b)
    return rows


# ---------------------------------------------------------------------------------------------- fit overhead


def bench_fit_overhead(settings: Settings) -> List[Row]:
    """``fit`` vs a hand-written loop on the same model, data, optimizer and precision (goal >= 0.97x, i.e. at
    most 3% overhead). ``fit`` runs with its defaults (training metrics accumulated from the forward passes).

    Example:
        >>> from benchmarks._config import TINY
        >>> rows = bench_fit_overhead(TINY)  # doctest: +SKIP
    """
    try:
        _fast_targets()
    except ImportError as error:
        return [skip_row("fit", "fit overhead", f"encdec.training.fit does not import yet: {error}")]
    rows: List[Row] = []
    rows.extend(guard("fit", "fit overhead", lambda: _bench_fit(settings)))
    return rows


def _bench_fit(settings: Settings) -> List[Row]:
    import encdec

    _, _, _, auto = _fast_targets()
    name, side, batch = "resnet34_unet", settings.fast_size, settings.fast_batch
    batches = settings.fit_overhead_batches
    print(f"  fit: {name}, {batches} batches of {batch}x3x{side}x{side}, precision {auto}", flush=True)
    torch.manual_seed(0)
    model = encdec.create_model(name)
    gen = torch.Generator().manual_seed(11)
    xs = torch.randn(batch * batches, 3, side, side, generator=gen)
    ys = torch.randint(0, model.num_classes, (batch * batches, side, side), generator=gen)
    loader = _loader(xs, ys, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    variants: Dict[str, Callable[[], Any]] = {
        "hand-written loop": _hand_epoch(model, loader, optimizer, auto, True),
        "fit": _fit_epoch(model, loader, optimizer, precision=auto, channels_last=True),
    }
    if settings.details:
        variants["fit, metrics off"] = _fit_epoch(model, loader, optimizer, precision=auto, channels_last=True,
                                                  metrics=_NoMetrics())
    times = interleave(variants, **settings.timing(min_reps=max(settings.min_reps, 5),
                                                   max_reps=max(settings.max_reps, 7)))
    detail = ""
    if "fit, metrics off" in times:
        off = quantiles([h / f for h, f in zip(times["hand-written loop"], times["fit, metrics off"])])["median"]
        detail = f"; fit with a no-op metrics object: x{off:.3f}"
    shape = f"{batch}x3x{side}x{side}"
    rows = [ratio_row("fit", f"fit vs hand-written loop ({name})", times, "hand-written loop", "fit", goal=0.97,
                      notes=f"{auto}, channels_last, Adam, {batches} batches of {shape} per epoch, fit with default "
                            f"training metrics{detail}", shape=shape)]
    _free(model, optimizer)
    return rows
