"""The ``encdec`` command: ``list``, ``info``, ``convert``, ``train``, ``eval``, ``predict``, ``demo``, ``bench``.

Every verb is a thin layer over the library: builders from the registry, :func:`encdec.load_weights`,
:func:`encdec.training.fit`, :func:`encdec.training.evaluate`, :func:`encdec.inference.predict` and
:mod:`encdec.viz`. ``encdec VERB --help`` shows each verb's options with examples.

Exit status: 0 on success, 2 for a usage error (an unknown model, a malformed ``--data``, an option out of
range), 1 for a failure (a missing file or folder, a checkpoint that does not fit, a failed check); either way one
line on standard error says what to fix. ``--debug`` shows the full traceback instead.

Example:
    >>> from encdec.cli import main
    >>> main(["list", "--task", "classification", "--names"])
    custom_cnn
    resfcn18
    resnet18_classifier
    resnet50_cifar
    vgg16_cifar
    0
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["main", "build_parser", "CLIError", "UsageError", "DataSpec", "parse_data", "analyze_model"]

PROG = "encdec"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class CLIError(Exception):
    """A failure the user can fix (exit status 1); the message says how."""

    exit_code = 1


class UsageError(CLIError):
    """A command line that cannot be run as given (exit status 2)."""

    exit_code = 2


# ---------------------------------------------------------------------------------------------- data specs


@dataclass(frozen=True)
class DataKind:
    """One ``--data`` kind: its task(s) and the on-disk layout it expects."""

    name: str
    tasks: Tuple[str, ...]
    layout: str


DATA_KINDS: Dict[str, DataKind] = {
    "voc": DataKind("voc", ("segmentation",),
                    "the VOC2012 folder with JPEGImages/*.jpg, SegmentationClass/*.png and "
                    "ImageSets/Segmentation/{train,val}.txt (or its VOCdevkit parent)"),
    "pet": DataKind("pet", ("segmentation",),
                    "the Oxford-IIIT Pet folder with images/*.jpg, annotations/trimaps/*.png and "
                    "annotations/{trainval,test}.txt"),
    "cifar10": DataKind("cifar10", ("classification",),
                        "the cifar-10-batches-py folder (or its parent) with data_batch_1..5 and test_batch"),
    "dogs": DataKind("dogs", ("classification",),
                     "a folder with one sub-folder of images per class, e.g. Images/n02085620-Chihuahua/*.jpg"),
    "shapes": DataKind("shapes", ("segmentation", "classification"),
                       "nothing: synthetic shapes drawn on the fly; shapes:N sets the number of training images"),
}
_ALIASES = {"pets": "pet", "oxford-pet": "pet", "cifar": "cifar10", "cifar-10": "cifar10", "dog": "dogs",
            "synthetic": "shapes"}


@dataclass(frozen=True)
class DataSpec:
    """A parsed ``--data KIND[:PATH]``.

    Attributes:
        kind: ``voc``, ``pet``, ``cifar10``, ``dogs`` or ``shapes``.
        path: The dataset folder (``None`` for shapes).
        count: For shapes, the number of training images.

    Example:
        >>> parse_data("shapes:64")
        DataSpec(kind='shapes', path=None, count=64)
    """

    kind: str
    path: Optional[Path] = None
    count: int = 512


def parse_data(text: str) -> DataSpec:
    """Parse ``KIND:PATH`` (``shapes`` and ``shapes:N`` need no path).

    Raises:
        UsageError: Unknown kind, missing path, or a malformed shapes count.

    Example:
        >>> parse_data("voc:data/VOC2012")
        DataSpec(kind='voc', path=PosixPath('data/VOC2012'), count=512)
        >>> parse_data("shapes:64").count
        64
    """
    kind, sep, rest = text.partition(":")
    kind = _ALIASES.get(kind.lower(), kind.lower())
    if kind not in DATA_KINDS:
        raise UsageError(f"--data {text!r}: unknown kind {kind!r}; use one of "
                         + ", ".join(f"{k}:PATH" if k != "shapes" else "shapes" for k in DATA_KINDS))
    if kind == "shapes":
        if not rest:
            return DataSpec("shapes")
        if not rest.isdigit() or int(rest) < 1:
            raise UsageError(f"--data {text!r}: shapes takes a positive image count, e.g. shapes:256")
        return DataSpec("shapes", None, int(rest))
    if not sep or not rest:
        raise UsageError(f"--data {text!r}: give the folder, e.g. --data {kind}:PATH where PATH is "
                         f"{DATA_KINDS[kind].layout}")
    return DataSpec(kind, Path(rest).expanduser())


def _check_data_folder(spec: DataSpec) -> None:
    if spec.path is not None and not spec.path.is_dir():
        raise CLIError(f"dataset folder {spec.path} does not exist; --data {spec.kind}:PATH expects "
                       f"{DATA_KINDS[spec.kind].layout}")


# ---------------------------------------------------------------------------------------------- small helpers


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def _human_count(n: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def _table(rows: Sequence[Sequence[Any]], headers: Sequence[str], align: str = "") -> str:
    """Plain-text table; ``align`` has one ``l``/``r`` per column (default: left)."""
    cells = [[str(c) for c in headers]] + [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


def _jsonable(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _lookup_model(name: str) -> Any:
    import encdec

    try:
        return encdec.model_info(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _parse_model_args(name: str, pairs: Sequence[str]) -> Dict[str, Any]:
    """``--arg KEY=VALUE`` pairs as builder keyword arguments (values read as JSON when they parse)."""
    info = _lookup_model(name)
    accepted = [p for p in inspect.signature(info.builder).parameters if p != "weights"]
    out: Dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--arg {pair!r}: expected KEY=VALUE, e.g. --arg widths=[16,32,64,128,256]")
        if key not in accepted:
            raise UsageError(f"--arg {key}: {name} takes no such argument; it accepts {', '.join(accepted)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _positive(kind: type = int):
    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return convert


def _at_least(minimum: int):
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return convert


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _device(text: str) -> str:
    """``auto`` or a torch device this machine has (checked before any work starts)."""
    import torch

    if text == "auto":
        return text
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:1 or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine; use cpu or auto")
    return text


def _build(name: str, kwargs: Dict[str, Any], weights: Optional[Path] = None, *, partial: bool = False,
           log=print) -> Any:
    """Build ``name`` and load ``weights`` (strict unless ``partial``), recording the reference mean/std."""
    import encdec

    info = _lookup_model(name)
    try:
        model = encdec.create_model(name, **kwargs)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{name}: {error}") from None
    if weights is not None:
        report = encdec.load_weights(model, weights, strict=not partial)
        dropped = report.dropped
        shown = ", ".join(dropped[:4]) + (f" and {len(dropped) - 4} more" if len(dropped) > 4 else "")
        extra = f"; dropped {len(dropped)} entries the reference never uses ({shown})" if dropped else ""
        skipped = len(report.missing) + len(report.unexpected) + len(report.mismatched)
        extra += f"; {skipped} entries did not fit and were left as built (--partial)" if skipped else ""
        log(f"loaded {len(report.loaded)} tensors from {weights}{extra}")
    num_classes = getattr(model, "num_classes", None)
    for ref in info.reference_checkpoints:  # normalisation the reference checkpoints were trained with
        if ref.mean is not None and ref.num_classes == num_classes:
            model.encdec_config.setdefault("mean", list(ref.mean))
            model.encdec_config.setdefault("std", list(ref.std))
            break
    return model


def _load_for_inference(model_name: Optional[str], weights: Path, pairs: Sequence[str],
                        num_classes: Optional[int], log=print) -> Any:
    """A model for eval/predict: from ``--model`` + ``--weights``, or from an encdec file's own metadata."""
    import encdec
    from encdec.weights import read_metadata

    if not weights.exists():
        raise CLIError(f"--weights {weights}: no such file or folder")
    saved = weights.is_dir() or "architecture" in read_metadata(weights)
    if model_name is None or saved:
        if not saved:
            encdec.read_state_dict(weights)  # a file that is no checkpoint at all is named as such first
            raise UsageError(f"--weights {weights} does not name its architecture (a reference checkpoint); "
                             "pass --model NAME (see `encdec list`)")
        architecture = _saved_architecture(weights)
        if model_name is not None and model_name != architecture:
            raise UsageError(f"--weights {weights} holds a {architecture}, not a {model_name}")
        overrides = _parse_model_args(architecture, pairs)
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        model = encdec.from_pretrained(weights, **overrides)
        log(f"loaded {model.encdec_config['architecture']} from {weights}")
        return model
    kwargs = _parse_model_args(model_name, pairs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _build(model_name, kwargs, weights, log=log)


def _saved_architecture(path: Path) -> str:
    from encdec.weights import read_metadata

    if path.is_dir():
        try:
            return json.loads((path / "config.json").read_text())["architecture"]
        except (OSError, ValueError, KeyError):
            raise CLIError(f"{path}: expected config.json and model.safetensors (written by save_pretrained)") from None
    return read_metadata(path)["architecture"]


# ---------------------------------------------------------------------------------------------- model analysis


def analyze_model(name: str, *, size: Optional[int] = None, batch_size: int = 8, depth: int = 2,
                  kwargs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Parameters, FLOPs, a layer summary and a training-memory estimate, computed without allocating memory.

    The model is built on PyTorch's ``meta`` device, so even the 457M-parameter ``resfcn18`` costs nothing.
    FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add counts 2). The memory estimate
    of one float32 training step with Adam is weights + gradients + Adam's two moment buffers + the activations
    autograd saves for the backward pass (measured with saved-tensor hooks, each storage counted once).

    Args:
        name: A registered model name.
        size: Input side (default: the model's reference input size).
        batch_size: Batch size of the memory estimate.
        depth: Module depth of the layer summary.
        kwargs: Builder arguments.

    Returns:
        A JSON-able dict (``parameters``, ``flops_per_image``, ``memory``, ``layers``, ...).

    Raises:
        encdec.InputSizeError: ``size`` does not fit the model.

    Example:
        >>> report = analyze_model("custom_cnn", size=32, batch_size=2)
        >>> report["parameters"], report["output_shape"]
        (1702916, [2, 4])
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import encdec

    info = encdec.model_info(name)
    kwargs = dict(kwargs or {})
    size = int(size or info.input_size)
    if name == "resfcn18":
        kwargs.setdefault("input_size", size)
    with torch.device("meta"):
        model = encdec.create_model(name, **kwargs)
    model.train()
    params = list(model.parameters())
    n_params = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    param_storages = {p.untyped_storage()._cdata for p in params}
    in_channels = getattr(model, "in_channels", 3)
    run_batch = max(batch_size, 2)  # BatchNorm refuses one sample in training mode; activations scale linearly
    x = torch.empty(run_batch, in_channels, size, size, device="meta")

    layers: List[Dict[str, Any]] = []

    def hook(module_name: str, level: int):
        def record(module, args, output):
            out = output[-1] if isinstance(output, (list, tuple)) else output
            shape = list(out.shape[1:]) if hasattr(out, "shape") else None
            layers.append({"name": module_name, "level": level, "type": type(module).__name__, "output": shape,
                           "parameters": sum(p.numel() for p in module.parameters())})

        return record

    levels = {n: _level(model, n) for n, _ in model.named_modules() if n}
    handles = [m.register_forward_hook(hook(n, levels[n])) for n, m in model.named_modules()
               if n and levels[n] <= depth]
    saved: Dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage._cdata not in param_storages:
            saved[storage._cdata] = storage.nbytes()
        return t

    counter = FlopCounterMode(display=False)
    try:
        with counter, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = model(x)
    finally:
        for h in handles:
            h.remove()
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    layers.sort(key=lambda r: order.get(r["name"], 0))
    flops = counter.get_total_flops()
    activations = sum(saved.values()) * batch_size // run_batch
    grads = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    memory = {"batch_size": batch_size, "weights": param_bytes, "gradients": grads, "adam_state": 2 * grads,
              "activations": activations, "total": param_bytes + 3 * grads + activations}
    return {
        "name": name, "summary": info.summary, "task": info.task, "size_rule": info.size_rule,
        "input_size": size, "input_shape": [in_channels, size, size], "output_shape": [batch_size, *y.shape[1:]],
        "parameters": n_params, "trainable_parameters": trainable, "flops_per_image": flops / run_batch,
        "memory": memory, "layers": layers,
        "reference_checkpoints": [
            {"filename": r.filename, "dataset": r.dataset, "num_classes": r.num_classes, "input_size": r.input_size,
             "mean": r.mean, "std": r.std, "reached": r.reached} for r in info.reference_checkpoints
        ],
    }


def _level(model: Any, name: str) -> int:
    """Depth of a module name, not counting the index under a ``ModuleList`` (``encoder.stages.0`` is level 2)."""
    from torch import nn

    level, module = 0, model
    for part in name.split("."):
        if not isinstance(module, nn.ModuleList):
            level += 1
        module = getattr(module, part)
    return level


def _count_parameters(name: str) -> int:
    import torch

    import encdec

    with torch.device("meta"):
        model = encdec.create_model(name)
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------- verbs


def cmd_list(args: argparse.Namespace) -> int:
    import encdec

    names = encdec.list_models(args.pattern, task=args.task)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}; `encdec list` shows them all")
    if args.names:
        print("\n".join(names))
        return 0
    rows = []
    for name in names:
        info = encdec.model_info(name)
        refs = ", ".join(r.filename for r in info.reference_checkpoints)
        rows.append({"name": name, "task": info.task, "parameters": _count_parameters(name),
                     "input_size": info.input_size, "size_rule": info.size_rule, "reference_checkpoints": refs,
                     "summary": info.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(_table([(r["name"], r["task"], f"{r['parameters']:,}", r["input_size"], r["size_rule"],
                   r["reference_checkpoints"]) for r in rows],
                 ["model", "task", "parameters", "input", "input-size rule", "reference checkpoints"],
                 "llrrll"))
    print("\n`encdec info MODEL` shows layers, FLOPs and memory; `encdec train --model MODEL` trains one.")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    import encdec

    _lookup_model(args.model)
    kwargs = _parse_model_args(args.model, args.arg)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    try:
        report = analyze_model(args.model, size=args.size, batch_size=args.batch_size, depth=args.depth,
                               kwargs=kwargs)
    except encdec.InputSizeError as error:
        raise UsageError(f"--size {args.size}: {error}") from None
    if args.json:
        print(json.dumps(_jsonable(report), indent=2))
        return 0
    size, mem = report["input_size"], report["memory"]
    print(f"{report['name']}: {report['summary']}")
    print(f"task: {report['task']}; input {'x'.join(map(str, report['input_shape']))} -> output "
          f"{'x'.join(map(str, report['output_shape'][1:]))} per image")
    print(f"input-size rule: {report['size_rule']}")
    print(f"parameters: {report['parameters']:,} ({_human_bytes(mem['weights'])} in float32)")
    print(f"FLOPs: {_human_count(report['flops_per_image'], 'FLOPs')} per {size}x{size} image, forward "
          f"(a multiply-add counts 2)")
    print(f"memory of one float32 training step with Adam at batch {mem['batch_size']} (estimate): "
          f"{_human_bytes(mem['total'])} = weights {_human_bytes(mem['weights'])} + gradients "
          f"{_human_bytes(mem['gradients'])} + Adam state {_human_bytes(mem['adam_state'])} + activations "
          f"{_human_bytes(mem['activations'])}")
    print("\nlayers:")
    print(_table([(("  " * (r["level"] - 1)) + r["name"], r["type"],
                   "x".join(map(str, r["output"])) if r["output"] else "-", f"{r['parameters']:,}")
                  for r in report["layers"]], ["module", "type", "output (per image)", "parameters"], "lllr"))
    refs = report["reference_checkpoints"]
    print("\nreference checkpoints it loads:" if refs else "\nreference checkpoints: none")
    for r in refs:
        extra = f"; {r['reached']}" if r["reached"] else ""
        print(f"  {r['filename']}: {r['dataset']}, {r['num_classes']} outputs, {r['input_size']}x{r['input_size']}"
              f"{extra}")
        default = inspect.signature(encdec.model_info(report["name"]).builder).parameters.get("num_classes")
        same = default is not None and default.default == r["num_classes"]
        py_nc, sh_nc = ("", "") if same else (f"num_classes={r['num_classes']}, ", f" --num-classes {r['num_classes']}")
        print(f"    python: encdec.{report['name']}({py_nc}weights=\"{r['filename']}\")")
        print(f"    shell:  encdec convert {r['filename']} {Path(r['filename']).stem}.safetensors "
              f"--model {report['name']}{sh_nc}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    import torch

    import encdec

    src, dst = Path(args.input), Path(args.output)
    if not src.is_file():
        raise CLIError(f"{src}: no such checkpoint file")
    if src.resolve() == dst.resolve():
        raise UsageError("IN and OUT are the same file; write the safetensors copy elsewhere")
    if dst.suffix not in (".safetensors", ""):
        raise UsageError(f"OUT {dst}: give a .safetensors file, or a folder (config.json + model.safetensors)")
    kwargs = _parse_model_args(args.model, args.arg)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    model = _build(args.model, kwargs, src)
    meta: Dict[str, Any] = {"source": src.name}
    if args.class_names:
        names = [n.strip() for n in args.class_names.split(",")]
        if len(names) != getattr(model, "num_classes", len(names)):
            raise UsageError(f"--class-names lists {len(names)} names for a model with {model.num_classes} outputs")
        meta["class_names"] = names
    # Write into a private folder next to OUT, verify from there, and only then move into place, so a file that
    # fails verification never replaces a good OUT.
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        staged = staging / dst.name
        if dst.suffix == ".safetensors":
            encdec.save_weights(model, staged, **meta)
        else:
            encdec.save_pretrained(model, staged, **meta)
        # Verify: rebuild from the written file alone and compare every tensor and one forward pass.
        reloaded = encdec.from_pretrained(staged)
        ours, theirs = model.state_dict(), reloaded.state_dict()
        differ = [k for k in ours if k not in theirs or not torch.equal(ours[k], theirs[k])]
        if differ or len(ours) != len(theirs):
            raise CLIError(f"verification failed: {dst} would reload with different tensors: {', '.join(differ[:5])}")
        x = torch.randn(1, getattr(model, "in_channels", 3), *([_probe_size(model)] * 2))
        with torch.no_grad():
            same = torch.equal(model.eval()(x), reloaded.eval()(x))
        if not same:
            raise CLIError(f"verification failed: the model reloaded from {dst} computes different outputs")
        if staged.is_dir():
            dst.mkdir(exist_ok=True)
            for item in sorted(staged.iterdir()):  # each file replaced atomically
                os.replace(item, dst / item.name)
            written = dst / "model.safetensors"
        else:
            os.replace(staged, dst)
            written = dst
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    size = written.stat().st_size
    print(f"wrote {dst} ({len(ours)} tensors, {_human_bytes(size)}); verified: reloaded weights and outputs identical")
    print(f"load it with: encdec.from_pretrained(\"{dst}\")")
    return 0


def _probe_size(model: Any) -> int:
    if hasattr(model, "input_size"):  # resfcn18 takes exactly one size
        return int(model.input_size)
    if hasattr(model, "valid_size"):
        return int(model.valid_size(32))
    return 32


def _default_size(spec: DataSpec, info: Any) -> int:
    if spec.kind == "cifar10":
        return 32
    if spec.kind == "shapes":
        return 64 if info.task == "segmentation" else 32
    if spec.kind == "dogs":
        return info.input_size
    return 256


def _make_datasets(spec: DataSpec, task: str, size: int, num_classes: Optional[int], normalize: bool,
                   eval_split: Optional[str] = None, with_train: bool = True) -> Tuple[Any, Any, Dict[str, Any]]:
    """(train or None, validation, meta) datasets of a spec; ``meta`` has class names, palette and normalisation."""
    from encdec import datasets
    from encdec.datasets import presets

    _check_data_folder(spec)
    if task not in DATA_KINDS[spec.kind].tasks:
        other = [k for k, d in DATA_KINDS.items() if task in d.tasks]
        raise UsageError(f"--data {spec.kind} is a {DATA_KINDS[spec.kind].tasks[0]} dataset but the model is a "
                         f"{task} model; use --data {' or '.join(other)}, or pick another model (`encdec list`)")
    meta: Dict[str, Any] = {"palette": "voc", "mean": presets.IMAGENET_MEAN, "std": presets.IMAGENET_STD}
    if spec.kind == "shapes":
        common = dict(size=size, num_classes=num_classes or 3, task=task)
        make_train = lambda: datasets.SyntheticShapes(n=spec.count, seed=0, **common)  # noqa: E731
        make_val = lambda: datasets.SyntheticShapes(n=max(16, spec.count // 4), seed=1000, **common)  # noqa: E731
        meta.update(palette="shapes", mean=datasets.SyntheticShapes.mean, std=datasets.SyntheticShapes.std)
    elif spec.kind == "voc":
        boundary = "class" if num_classes == 22 else "ignore"
        make_train = lambda: datasets.VOCSegmentation(  # noqa: E731
            spec.path, "train", presets.voc_train(size), boundary=boundary)
        make_val = lambda: datasets.VOCSegmentation(  # noqa: E731
            spec.path, eval_split or "val", presets.voc_eval(size), boundary=boundary)
        meta.update(palette="voc22" if boundary == "class" else "voc")
    elif spec.kind == "pet":
        def make_val() -> Any:
            val = datasets.OxfordPetSegmentation(spec.path, eval_split or "val", transforms=presets.pets_eval(
                size, normalize))
            if len(val) == 0 and eval_split is None:  # too few images per breed to hold any out: use test
                val = datasets.OxfordPetSegmentation(spec.path, "test", transforms=presets.pets_eval(size, normalize))
            return val

        make_train = lambda: datasets.OxfordPetSegmentation(  # noqa: E731
            spec.path, "train", transforms=presets.pets_train(size, normalize))
        meta.update(palette="binary")
        if not normalize:  # the reference feeds [0, 1] images
            meta.update(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    elif spec.kind == "cifar10":
        make_train = lambda: datasets.CIFAR10(spec.path, train=True, transform=presets.cifar_train())  # noqa: E731
        make_val = lambda: datasets.CIFAR10(  # noqa: E731
            spec.path, train=eval_split == "train", transform=presets.cifar_eval())
        meta.update(mean=presets.CIFAR10_MEAN, std=presets.CIFAR10_STD)
    else:
        make_train = lambda: datasets.DogImages(spec.path, "train", presets.dogs_train(size))  # noqa: E731
        make_val = lambda: datasets.DogImages(spec.path, eval_split or "val", presets.dogs_eval(size))  # noqa: E731
    try:
        val = make_val()
        train = make_train() if with_train else None
    except FileNotFoundError as error:
        raise CLIError(f"{error}; --data {spec.kind}:PATH expects {DATA_KINDS[spec.kind].layout}") from None
    meta["class_names"] = list(val.class_names)
    meta["num_classes"] = val.num_classes
    meta["ignore_index"] = getattr(val, "ignore_index", None)
    return train, val, meta


def _limit(dataset: Any, n: Optional[int]) -> Any:
    from torch.utils.data import Subset

    if n is None or n >= len(dataset):
        return dataset
    subset = Subset(dataset, range(n))
    for attr in ("num_classes", "ignore_index", "class_names"):  # fit and evaluate read these
        if hasattr(dataset, attr):
            setattr(subset, attr, getattr(dataset, attr))
    return subset


def _resolve_classes(spec: DataSpec, info: Any, requested: Optional[int]) -> Optional[int]:
    """The number of outputs: asked for, else the 22-output reference convention on VOC, else the dataset's."""
    if requested is not None:
        return requested
    if spec.kind == "voc":
        default = inspect.signature(info.builder).parameters.get("num_classes")
        return 22 if default is not None and default.default == 22 else 21
    return None


def _check_size(model: Any, size: int, name: str) -> None:
    valid = getattr(model, "valid_size", None)
    if valid is not None and valid(size) != size:
        info = _lookup_model(name)
        raise UsageError(f"--size {size} does not fit {name} ({info.size_rule}); try --size {valid(size)}")


def cmd_train(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    import encdec
    from encdec.training import fit, seed_everything

    info = _lookup_model(args.model)
    spec = parse_data(args.data)
    _check_precision(args)
    kwargs = _parse_model_args(args.model, args.arg)
    size = args.size or _default_size(spec, info)
    if args.model == "resfcn18":
        kwargs.setdefault("input_size", size)
    num_classes = _resolve_classes(spec, info, args.num_classes)
    normalize = args.encoder_weights is not None
    train_set, val_set, meta = _make_datasets(spec, info.task, size, num_classes, normalize)
    kwargs["num_classes"] = meta["num_classes"] if num_classes is None else num_classes
    if kwargs["num_classes"] != meta["num_classes"]:
        raise UsageError(f"--num-classes {kwargs['num_classes']} does not match the {meta['num_classes']} classes "
                         f"of --data {spec.kind}")
    if args.encoder_weights is not None:
        if "encoder_weights" not in inspect.signature(info.builder).parameters:
            raise UsageError(f"{args.model} takes no --encoder-weights (only whole-model --weights)")
        kwargs["encoder_weights"] = Path(args.encoder_weights)
    for option in ("weights", "encoder_weights"):
        path = getattr(args, option)
        if path is not None and not Path(path).is_file():
            raise CLIError(f"--{option.replace('_', '-')} {path}: no such file")
    seed_everything(args.seed)  # before building, so the initial weights repeat too
    model = _build(args.model, kwargs, Path(args.weights) if args.weights else None, partial=args.partial,
                   log=lambda line: print(line, file=sys.stderr))
    _check_size(model, size, args.model)
    train_set, val_set = _limit(train_set, args.limit), _limit(val_set, args.limit)
    if len(train_set) == 0 or len(val_set) == 0:
        raise CLIError(f"--data {args.data}: the training or validation split is empty")
    workers = args.workers
    if workers is None:
        workers = 0 if spec.kind == "shapes" else min(4, os.cpu_count() or 1)
    batch_size = min(args.batch_size, len(train_set))
    train_loader = DataLoader(train_set, batch_size=batch_size, shuffle=True, num_workers=workers,
                              drop_last=len(train_set) > batch_size, persistent_workers=workers > 0)
    val_loader = DataLoader(val_set, batch_size=batch_size, num_workers=workers)

    out = Path(args.out or f"runs/{args.model}-{spec.kind}")
    params = [p for p in model.parameters() if p.requires_grad]
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    scheduler = None
    if args.scheduler == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    elif args.scheduler == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                                        total_steps=args.epochs * len(train_loader))
    loss = None
    if args.loss != "ce":
        if info.task != "segmentation":
            raise UsageError(f"--loss {args.loss} is for segmentation models; {args.model} is a classifier")
        from encdec.losses import DiceCELoss, DiceLoss

        loss = (DiceLoss if args.loss == "dice" else DiceCELoss)(ignore_index=meta["ignore_index"])
    print(f"training {args.model} ({sum(p.numel() for p in params):,} trainable parameters) on {spec.kind}: "
          f"{len(train_set)} training / {len(val_set)} validation images at {size}x{size}, {args.epochs} epochs, "
          f"batch {batch_size} -> {out}/", file=sys.stderr)
    history = fit(model, train_loader, val_loader, epochs=args.epochs, optimizer=optimizer, scheduler=scheduler,
                  loss=loss, device=args.device, precision=args.precision, checkpoint_dir=out, resume=args.resume,
                  early_stopping=args.early_stopping, seed=args.seed, progress=not args.quiet)
    extra = {"class_names": meta["class_names"], "mean": list(meta["mean"]), "std": list(meta["std"])}
    encdec.save_pretrained(model, out, **extra)
    written = ["config.json", "model.safetensors", "best.safetensors", "last.pt", "history.json"]
    if not args.no_plots:
        written += _write_pictures(model, history, val_set, meta, out, info.task, args.device)
    last = history.epochs[-1] if history.epochs else {}
    shown = {k: v for k, v in last.items() if k.startswith("val_") and isinstance(v, float)}
    print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    if history.best_epoch is not None:
        print(f"best {history.monitor} {history.best_value:.4f} at epoch {history.best_epoch} (best.safetensors)")
    print(f"wrote {out}/: {', '.join(written)}")
    print(f"use it: encdec eval --weights {out} --data {args.data}   |   encdec.from_pretrained(\"{out}\")")
    return 0


def _write_pictures(model: Any, history: Any, dataset: Any, meta: Dict[str, Any], out: Path, task: str,
                    device: str) -> List[str]:
    """curves.png and predictions.png (a grid of validation images); returns the names written."""
    from torch.utils.data import DataLoader

    from encdec import viz
    from encdec.inference import predict

    written = []
    try:
        history.plot(out / "curves.png")
        written.append("curves.png")
    except ImportError as error:
        print(f"note: curves.png skipped ({error})", file=sys.stderr)
    if task == "segmentation":
        images, targets = next(iter(DataLoader(dataset, batch_size=min(6, len(dataset)))))
        preds = predict(model, images, device=device, precision="fp32")
        viz.save_prediction_grid(out / "predictions.png", images, targets, preds, palette=meta["palette"],
                                 ignore_index=meta["ignore_index"], mean=meta["mean"], std=meta["std"])
        written.append("predictions.png")
    elif _classification_grid(model, dataset, meta, out / "predictions.png", device):
        written.append("predictions.png")
    return written


def _classification_grid(model: Any, dataset: Any, meta: Dict[str, Any], path: Path, device: str) -> bool:
    """A grid of validation images titled with predicted / true class (needs matplotlib)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    import torch
    from torch.utils.data import DataLoader

    from encdec import viz
    from encdec.inference import predict

    images, labels = next(iter(DataLoader(dataset, batch_size=min(8, len(dataset)))))
    preds = predict(model, images, device=device, precision="fp32")
    rgb = viz.to_rgb(images, meta["mean"], meta["std"])
    names = meta["class_names"]
    figure = Figure(figsize=(2 * len(rgb), 2.4))
    for i, (picture, p, t) in enumerate(zip(rgb, preds.tolist(), torch.as_tensor(labels).tolist())):
        axis = figure.add_subplot(1, len(rgb), i + 1)
        axis.imshow(picture)
        axis.set_title(f"{names[p]}\n(true: {names[t]})", fontsize=8, color="green" if p == t else "red")
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


#: The splits ``encdec eval --split`` accepts for each ``--data`` kind.
EVAL_SPLITS: Dict[str, Tuple[str, ...]] = {
    "voc": ("train", "val", "trainval"),
    "pet": ("trainval", "test", "train", "val"),
    "cifar10": ("train", "test"),
    "dogs": ("train", "val", "all"),
    "shapes": ("val",),
}


def _check_precision(args: argparse.Namespace) -> None:
    """fp16 needs CUDA: refuse it before any data is read."""
    import torch

    if args.precision == "fp16" and not (args.device.startswith("cuda")
                                         or (args.device == "auto" and torch.cuda.is_available())):
        raise UsageError(f"--precision fp16 needs a CUDA device (--device {args.device}); use bf16 or fp32 on the CPU")


def cmd_eval(args: argparse.Namespace) -> int:
    from torch.utils.data import DataLoader

    import encdec
    from encdec.training import evaluate

    spec = parse_data(args.data)
    splits = EVAL_SPLITS[spec.kind]
    if args.split is not None and args.split not in splits:
        raise UsageError(f"--split {args.split!r} is not a split of --data {spec.kind}; "
                         f"choose from {', '.join(splits)}")
    _check_precision(args)
    log = (lambda line: print(line, file=sys.stderr))  # noqa: E731 - keep stdout clean for --json
    model = _load_for_inference(args.model, Path(args.weights), args.arg, args.num_classes, log=log)
    name = model.encdec_config["architecture"]
    info = encdec.model_info(name)
    size = args.size or getattr(model, "input_size", None) or _default_size(spec, info)
    normalize = tuple(model.encdec_config.get("mean", ())) not in ((), (0.0, 0.0, 0.0))
    _, dataset, meta = _make_datasets(spec, info.task, size, getattr(model, "num_classes", None), normalize,
                                      eval_split=args.split, with_train=False)
    _check_size(model, size, name)
    if getattr(model, "num_classes", meta["num_classes"]) != meta["num_classes"]:
        raise CLIError(f"{name} has {model.num_classes} outputs but --data {spec.kind} has {meta['num_classes']} "
                       "classes; pass --num-classes or use matching weights")
    dataset = _limit(dataset, args.limit)
    loader = DataLoader(dataset, batch_size=args.batch_size,
                        num_workers=args.workers if args.workers is not None else 0)
    started = time.perf_counter()
    scores = evaluate(model, loader, device=args.device, precision=args.precision)
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(_jsonable({"model": name, "data": args.data, "images": len(dataset), **scores}), indent=2))
        return 0
    print(f"{name} on {spec.kind} ({len(dataset)} images, {seconds:.1f} s)")
    scalar = [(k, v) for k, v in scores.items() if isinstance(v, (int, float))]
    print(_table([(k, f"{v:.4f}" if math.isfinite(v) else "n/a") for k, v in scalar], ["metric", "value"], "lr"))
    per_class = {k: v for k, v in scores.items() if isinstance(v, list)}
    if per_class and len(meta["class_names"]) == len(next(iter(per_class.values()))):
        keys = list(per_class)
        rows = [[name_] + [_fmt(per_class[k][i]) for k in keys] for i, name_ in enumerate(meta["class_names"])]
        print()
        print(_table(rows, ["class"] + keys, "l" + "r" * len(keys)))
        if any("n/a" in row for row in rows):
            print("n/a: a class absent from targets and predictions, or the ignored class; left out of the means")
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


def _expand_images(items: Sequence[str]) -> List[Path]:
    paths: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and not q.name.startswith("."))
            if not found:
                raise CLIError(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.is_file():
            paths.append(p)
        else:
            raise CLIError(f"{p}: no such image file or folder")
    return paths


def _output_stems(paths: Sequence[Path]) -> Dict[Path, str]:
    """A distinct file-name stem per image: ``img`` alone, ``img.png`` / ``img.jpg`` when two share a stem, and
    the parent folder's name as well when even those clash (``a/img.png``, ``b/img.png``).

    Example:
        >>> sorted(_output_stems([Path("a/x.png"), Path("b/x.jpg"), Path("y.png")]).values())
        ['x.jpg', 'x.png', 'y']
    """
    stems, names = Counter(p.stem for p in paths), Counter(p.name for p in paths)
    return {p: p.stem if stems[p.stem] == 1 else p.name if names[p.name] == 1 else f"{p.parent.name}_{p.name}"
            for p in paths}


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    import encdec
    from encdec import viz
    from encdec._checkpoint import atomic_write_json
    from encdec.inference import predict

    paths = _expand_images(args.images)
    log = (lambda line: print(line, file=sys.stderr))  # noqa: E731
    model = _load_for_inference(args.model, Path(args.weights), args.arg, args.num_classes, log=log)
    name = model.encdec_config["architecture"]
    info = encdec.model_info(name)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = model.encdec_config.get("class_names")
    palette = args.palette or ("voc22" if getattr(model, "num_classes", 0) == 22 else
                               "binary" if getattr(model, "num_classes", 0) == 2 else "voc")
    size = args.size
    if info.task == "classification" and size is None:
        size = getattr(model, "input_size", None) or info.input_size
    records = []
    stems = _output_stems(paths)
    for path in paths:
        try:
            with Image.open(path) as handle:
                original = handle.convert("RGB")
        except (UnidentifiedImageError, OSError) as error:
            raise CLIError(f"{path}: not a readable image ({error})") from None
        image = original.resize((size, size), Image.BILINEAR) if size else original
        if info.task == "classification":
            probs = predict(model, image, probabilities=True, device=args.device)
            top = int(probs.argmax())
            label = names[top] if names else str(top)
            records.append({"image": str(path), "label": label, "index": top, "probability": float(probs[top])})
            print(f"{path}: {label} ({float(probs[top]):.3f})")
            continue
        labels = predict(model, image, device=args.device)
        mask = labels.numpy().astype(np.uint8)
        if size:
            mask = np.asarray(Image.fromarray(mask).resize(original.size, Image.NEAREST))
        stem = stems[path]
        mask_path = out / f"{stem}_mask.png"
        overlay_path = out / f"{stem}_overlay.png"
        viz.save_mask(mask_path, mask, palette=palette)
        Image.fromarray(viz.overlay(np.asarray(original), mask, alpha=args.alpha, palette=palette)).save(overlay_path)
        present = np.bincount(mask.reshape(-1), minlength=getattr(model, "num_classes", 1))
        shares = ", ".join(f"{names[i] if names and i < len(names) else i} {c / mask.size:.0%}"
                           for i, c in enumerate(present) if c)
        records.append({"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path),
                        "class_pixels": {str(i): int(c) for i, c in enumerate(present) if c}})
        print(f"{path}: {mask_path.name}, {overlay_path.name} ({shares})")
    atomic_write_json(records, out / "predictions.json")
    print(f"wrote {len(records)} predictions to {out}/ (predictions.json lists them)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from encdec import demo

    config = demo.QUICK if args.quick else demo.FULL
    config = demo.with_overrides(config, epochs=args.epochs, train_images=args.images)
    demo.run_demo(args.out, config=config, seed=args.seed, device=args.device, progress=not args.quiet)
    return 0


# ---------------------------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at ``--help``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


_FORMAT = argparse.RawDescriptionHelpFormatter


def _add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--model", required=required, metavar="NAME", help="a model name from `encdec list`")
    p.add_argument("--num-classes", type=_positive(), metavar="N", help="number of outputs (default: the data's)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="other builder argument, JSON value (repeatable), e.g. --arg widths=[16,32,64,128,256]")


def _add_runtime_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=_device, default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto picks bf16 on GPUs and on CPUs with native bfloat16, else fp32")
    p.add_argument("--workers", type=_at_least(0), metavar="N", help="DataLoader worker processes")


def build_parser() -> argparse.ArgumentParser:
    """The ``encdec`` argument parser (one sub-command per verb).

    Example:
        >>> build_parser().parse_args(["info", "unet", "--size", "128"]).size
        128
    """
    parser = _Parser(prog=PROG, formatter_class=_FORMAT, description=(
        "Encoder-decoder segmentation networks and CNN classifiers, faithful to their reference checkpoints.\n\n"
        "first steps:\n"
        "  encdec demo                     train a small U-Net on synthetic shapes (a minute or two on a CPU)\n"
        "  encdec list                     the models, their sizes and the checkpoints they load\n"
        "  encdec VERB --help              options and examples of one verb"))
    from encdec import __version__

    parser.add_argument("--version", action="version", version=f"encdec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    p = sub.add_parser("list", help="list the models", formatter_class=_FORMAT, description=(
        "List the registered models: task, parameters, reference input size, input-size rule and the reference\n"
        "checkpoints each loads.\n\nexamples:\n  encdec list\n  encdec list 'resnet*' --task segmentation\n"
        "  encdec list --json"))
    p.add_argument("pattern", nargs="?", help="shell pattern on the names, e.g. 'resnet*'")
    p.add_argument("--task", choices=["segmentation", "classification"])
    p.add_argument("--names", action="store_true", help="names only, one per line")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="layers, parameters, FLOPs and memory of a model", formatter_class=_FORMAT,
                       description=(
        "Describe one model without allocating it: layer summary, parameters, FLOPs per image\n"
        "(torch.utils.flop_counter), the memory of a float32 training step with Adam at a batch size, and the\n"
        "reference checkpoints it accepts.\n\nexamples:\n  encdec info unet\n  encdec info resnet34_unet --size 512 "
        "--batch-size 4\n  encdec info unet --arg encoder=resnet34 --num-classes 2 --json"))
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--size", type=_positive(), help="input side (default: the reference size)")
    p.add_argument("--batch-size", type=_positive(), default=8, help="batch of the memory estimate (default 8)")
    p.add_argument("--depth", type=_positive(), default=2, help="module depth of the layer summary (default 2)")
    p.add_argument("--num-classes", type=_positive(), metavar="N")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="checkpoint -> safetensors with metadata, verified", formatter_class=_FORMAT,
                       description=(
        "Convert any supported checkpoint (a reference .pth/.ckpt, an encdec checkpoint, safetensors) into a\n"
        "safetensors file that records the architecture, its arguments and the normalisation, then reload it\n"
        "and check weights and outputs are identical. Checkpoints are read without running pickled code.\n\n"
        "examples:\n  encdec convert vgg16_epoch250.ckpt vgg16.safetensors --model vgg16_cifar\n"
        "  encdec convert UNet_best_model.pth unet_voc.safetensors --model unet\n"
        "  encdec convert ResNet_UNet_best_model_90.pth pets/ --model resnet34_unet --class-names background,pet"))
    p.add_argument("input", metavar="IN", help="checkpoint file")
    p.add_argument("output", metavar="OUT", help="a .safetensors file, or a folder (config.json + model.safetensors)")
    _add_model_args(p)
    p.add_argument("--class-names", metavar="A,B,...", help="class names to store, comma-separated")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("train", help="train or fine-tune a model", formatter_class=_FORMAT, description=(
        "Train a model with encdec's fit(): validation every epoch, checkpoints (last.pt, best.pt,\n"
        "best.safetensors), history.json, curves.png, a prediction grid, and a save_pretrained folder\n"
        "(config.json + model.safetensors) in --out.\n\n"
        "data kinds (--data KIND:PATH):\n"
        + "".join(f"  {k + (':PATH' if k != 'shapes' else '[:N]'):<13}{d.layout}\n" for k, d in DATA_KINDS.items())
        + "\nexamples:\n"
        "  encdec train --model unet --arg widths=[16,32,64,128,256] --data shapes --epochs 5\n"
        "  encdec train --model unet --data voc:data/VOC2012 --weights UNet_best_model.pth --epochs 1\n"
        "  encdec train --model resnet34_unet --data pet:data/oxford-iiit-pet --loss dice_ce --size 256\n"
        "  encdec train --model vgg16_cifar --data cifar10:data --weights vgg16_epoch250.ckpt --lr 1e-4\n"
        "  encdec train --model resnet18_classifier --data dogs:data/Images "
        "--encoder-weights resnet18-f37072fd.pth\n"
        "  encdec train --model unet --data shapes --out runs/shapes --resume   # continue an interrupted run"))
    _add_model_args(p)
    p.add_argument("--data", default="shapes", metavar="KIND:PATH", help="dataset (default: shapes, no files)")
    p.add_argument("--weights", metavar="FILE", help="start from this checkpoint (any supported format)")
    p.add_argument("--partial", action="store_true",
                   help="load only the --weights entries that fit (e.g. a checkpoint with another head)")
    p.add_argument("--encoder-weights", metavar="FILE", help="torchvision ImageNet file for the encoder")
    p.add_argument("--epochs", type=_positive(), default=10, help="epochs to train (default 10)")
    p.add_argument("--batch-size", type=_positive(), default=8, help="images per step (default 8)")
    p.add_argument("--lr", type=_positive(float), default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="(default 1e-4)")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw", help="(default adamw; sgd: momentum 0.9)")
    p.add_argument("--scheduler", choices=["none", "cosine", "onecycle"], default="cosine",
                   help="learning-rate schedule (default cosine)")
    p.add_argument("--loss", choices=["ce", "dice", "dice_ce"], default="ce",
                   help="segmentation loss: cross-entropy (default), soft Dice, or both")
    p.add_argument("--size", type=_positive(), help="image side (default: 256 for VOC/Pet, 32 for CIFAR-10, ...)")
    p.add_argument("--limit", type=_positive(), metavar="N", help="use only the first N images of each split")
    p.add_argument("--early-stopping", type=_positive(), metavar="EPOCHS", help="patience in epochs")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/MODEL-KIND)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    p.add_argument("--seed", type=_at_least(0), default=0,
                   help="seed of weights, data order and augmentation (default 0)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--no-plots", action="store_true", help="skip curves.png and predictions.png")
    _add_runtime_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="metrics of a model on a dataset", formatter_class=_FORMAT, description=(
        "Evaluate weights on a dataset split and print a metrics table (--json for JSON). Segmentation:\n"
        "pixel accuracy, mean class accuracy, mIoU, frequency-weighted IoU, Dice and per-class IoU/Dice, all\n"
        "from one confusion matrix, ignore labels left out. Classification: top-1/top-5 and class-mean accuracy.\n\n"
        "examples:\n  encdec eval --model unet --weights UNet_best_model.pth --data voc:data/VOC2012\n"
        "  encdec eval --weights runs/unet-shapes --data shapes --json\n"
        "  encdec eval --model vgg16_cifar --weights vgg16_epoch250.ckpt --data cifar10:data"))
    _add_model_args(p, required=False)
    p.add_argument("--weights", required=True, metavar="FILE", help="checkpoint, or a folder from encdec train")
    p.add_argument("--data", required=True, metavar="KIND:PATH")
    p.add_argument("--split", help="split to score (default: val; Pet: val; CIFAR-10: test)")
    p.add_argument("--size", type=_positive())
    p.add_argument("--batch-size", type=_positive(), default=16)
    p.add_argument("--limit", type=_positive(), metavar="N", help="score only the first N images")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_runtime_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="colored masks and overlays for images", formatter_class=_FORMAT,
                       description=(
        "Predict every image (files or folders): segmentation models write IMAGE_mask.png (a palette PNG whose\n"
        "pixel values are the classes) and IMAGE_overlay.png; classifiers print the class. Images of any size\n"
        "are padded to what the model takes.\n\n"
        "examples:\n  encdec predict --model unet --weights UNet_best_model.pth photos/*.jpg --out masks/\n"
        "  encdec predict --weights runs/unet-shapes shapes/ --out preds/\n"
        "  encdec predict --model resnet34_unet --weights pets.pth cat.jpg --size 256 --out preds/"))
    _add_model_args(p, required=False)
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    p.add_argument("--weights", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--size", type=_positive(), help="resize to SIZE x SIZE first (masks are resized back)")
    p.add_argument("--alpha", type=_fraction, default=0.5, help="overlay opacity from 0 to 1 (default 0.5)")
    p.add_argument("--palette", choices=["voc", "voc22", "binary", "shapes", "tab10"],
                   help="mask colours (default by number of classes)")
    p.add_argument("--device", type=_device, default="auto")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="train a U-Net on synthetic shapes and show it learned", formatter_class=_FORMAT,
                       description=(
        "Build a small U-Net, score it, train it with fit() on synthetic shapes (a minute or two on two CPU\n"
        "cores), score it again, write metrics.json, history.png, predictions.png and a .safetensors file, then\n"
        "reload that file and check the predictions are identical. Fails if mIoU stays below 0.8.\n\n"
        "examples:\n  encdec demo\n  encdec demo --out /tmp/demo --quick"))
    p.add_argument("--out", default="demo-output", metavar="DIR", help="output folder (default demo-output)")
    p.add_argument("--quick", action="store_true", help="a seconds-long run with tiny sizes (no mIoU goal)")
    p.add_argument("--epochs", type=_positive(), help="override the number of epochs")
    p.add_argument("--images", type=_positive(), help="override the number of training images")
    p.add_argument("--seed", type=_at_least(0), default=0)
    p.add_argument("--device", type=_device, default="cpu", help="cpu (default), auto, cuda, ...")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    for name, verb in sub.choices.items():  # --debug also after the verb; SUPPRESS keeps one given before it
        if name != "bench":
            verb.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                              help="show full tracebacks on errors")
    sub.add_parser("bench", help="run the benchmark suite (from a source checkout)", add_help=False,
                   description="See `encdec bench --help`.")
    return parser


def _known_errors() -> Tuple[type, ...]:
    errors: List[type] = [FileNotFoundError, PermissionError, IsADirectoryError, ValueError, OSError]
    try:
        from encdec.demo import DemoError
        from encdec.training import NonFiniteLossError

        errors += [DemoError, NonFiniteLossError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``encdec`` command and return its exit status.

    Args:
        argv: Arguments without the program name (default: ``sys.argv[1:]``).

    Returns:
        0 on success, 1 on a failure, 2 on a usage error.

    Example:
        >>> main(["info", "no_such_model"])
        2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from encdec.bench import main as bench_main

        return int(bench_main(argv[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.verb is None:
        parser.print_help(sys.stderr)
        return 2
    prog = f"{PROG} {args.verb}"
    try:
        return int(args.func(args))
    except CLIError as error:
        if args.debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`encdec list | head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except _known_errors() as error:
        if args.debug:
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
