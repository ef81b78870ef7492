"""``encdec predict``: coloured masks and overlays (segmentation) or classes (classification) for image files."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._files import IMAGE_SUFFIXES, open_regular_file
from .._registry import model_info
from ..atomic import atomic_write_json, ensure_writable_dir
from ..deployment import BACKENDS, OnnxPredictor
from ..inference import predict
from ..input_spec import input_spec_of
from ..quantization import QuantizedPredictor, is_quantized
from ..viz import overlay, save_mask
from ._common import (
    FORMAT,
    CLIError,
    UsageError,
    device,
    fraction,
    model_for_inference,
    positive,
    recorded_size,
    stderr,
)
from .train import add_model_args, check_precision

__all__: list = []  # a verb module: parsing and printing, nothing to import


#: Images read and handed to one ``encdec.predict`` call (in batches of ``--batch-size``): memory holds this many
#: decoded images at a time, however many are given.
IMAGES_PER_CALL = 64


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="colored masks and overlays for images", formatter_class=FORMAT,
                       description=(
        "Predict every image (files or folders): segmentation models write IMAGE_mask.png (a palette PNG whose\n"
        "pixel values are the classes) and IMAGE_overlay.png; classifiers print the class. Images of any size\n"
        "are padded to what the model takes; images of one size run in batches (--batch-size).\n\n"
        "examples:\n  encdec predict --model unet --weights UNet_best_model.pth photos/*.jpg --out masks/\n"
        "  encdec predict --weights runs/unet-shapes shapes/ --out preds/\n"
        "  encdec predict --model resnet34_unet --weights pets.pth cat.jpg --size 256 --out preds/\n"
        "  encdec predict --weights runs/unet-shapes shapes/ --out preds/ --backend onnxruntime\n"
        "  encdec predict --model unet --weights UNet_best_model.pth big.tif --out preds/ --tile 512 --tta\n"
        "  encdec predict --weights runs/unet-shapes-int8 shapes/ --out preds/   # written by encdec quantize\n\n"
        "Images that cannot be read are listed at the end with the reason and the exit status is 1; the\n"
        "others are still written."))
    add_model_args(p, required=False)
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    p.add_argument("--weights", required=True, metavar="FILE", help="a checkpoint, a run or save_pretrained folder, "
                   "or an int8 folder written by `encdec quantize` (run in OpenVINO)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--size", type=positive(), help="resize to SIZE x SIZE first, masks resized back (default: the "
                   "training size recorded with the weights; else each image's own size, classifiers their input "
                   "size)")
    p.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity from 0 to 1 (default 0.5)")
    p.add_argument("--palette", choices=["voc", "voc22", "binary", "shapes", "tab10"],
                   help="mask colours (default by number of classes)")
    p.add_argument("--device", type=device, default="auto")
    p.add_argument("--batch-size", type=positive(), default=8, metavar="N",
                   help="images per forward pass (default 8); images of one size share a batch")
    p.add_argument("--backend", choices=["torch", *BACKENDS], default="torch",
                   help="run the model in PyTorch (default), or export it to ONNX and run it in ONNX Runtime or "
                        "OpenVINO (same outputs)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model first (PyTorch backend)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="PyTorch backend (default auto: bf16 on GPUs and on CPUs with native bfloat16, else fp32); "
                        "fp32 gives the labels of the ONNX backends")
    p.add_argument("--tile", type=positive(), metavar="PIXELS",
                   help="segmentation: predict each image at its own size through overlapping tiles of this side "
                        "(images larger than memory allows; --size still resizes first if given)")
    p.add_argument("--overlap", type=fraction, default=0.25, help="share of a tile overlapping its neighbours "
                   "(default 0.25)")
    p.add_argument("--tta", action="store_true", help="segmentation: also predict flipped images and average")
    p.set_defaults(func=run)


def expand_images(items: Sequence[str], skipped: Optional[List[Path]] = None) -> List[Path]:
    """Files as given and the images inside folders (sorted, hidden files left out); other files found in the
    folders are appended to ``skipped``."""
    paths: List[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            visible = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith("."))
            found = [q for q in visible if q.suffix.lower() in IMAGE_SUFFIXES]
            if not found:
                raise CLIError(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
            if skipped is not None:
                skipped.extend(q for q in visible if q.suffix.lower() not in IMAGE_SUFFIXES)
        elif p.is_file():
            paths.append(p)
        else:
            raise CLIError(f"{p}: no such image file or folder")
    return paths


def output_stems(paths: Sequence[Path]) -> Dict[Path, str]:
    """A distinct file-name stem per image: ``img`` alone, ``img.png`` / ``img.jpg`` when two share a stem, and
    the parent folder's name as well when even those clash (``a/img.png``, ``b/img.png``).

    Example:
        >>> sorted(output_stems([Path("a/x.png"), Path("b/x.jpg"), Path("y.png")]).values())
        ['x.jpg', 'x.png', 'y']
    """
    stems, names = Counter(p.stem for p in paths), Counter(p.name for p in paths)
    return {p: p.stem if stems[p.stem] == 1 else p.name if names[p.name] == 1 else f"{p.parent.name}_{p.name}"
            for p in paths}


def _prediction_size(model: Any, task: str, requested: Optional[int], tiled: bool = False) -> Optional[int]:
    """The side images are resized to for the model (``None``: their own size); outputs come back at each image's
    size. ``--size`` wins; else the training size recorded with the weights (a model trained on images stretched to
    64x64 has learned objects at that scale, so it sees photos the same way), resized the way training did; else
    classifiers use their reference input size and segmentation models each image's own size."""
    if requested is not None:
        return requested
    if tiled and task == "segmentation":  # tiles exist to predict large images at their own resolution
        return None
    size = recorded_size(model)
    if size is not None:
        stderr(f"note: predicting at {size}x{size}, the training size recorded with the weights (--size overrides)")
        return size
    if task == "classification":
        spec = input_spec_of(model)
        return (spec.fixed or spec.reference) if spec is not None else None
    return None


def _runner(model: Any, args: argparse.Namespace) -> Any:
    """The model, or an ONNX export of it run in the chosen runtime."""
    if args.backend == "torch":
        return model
    if args.compile:
        raise CLIError(f"--compile applies to the PyTorch backend, not --backend {args.backend}")
    if args.precision not in ("auto", "fp32"):
        raise CLIError(f"--precision {args.precision} applies to the PyTorch backend; --backend {args.backend} runs "
                       "the exported fp32 model")
    return OnnxPredictor.from_model(model, backend=args.backend)


def _quantized(args: argparse.Namespace) -> QuantizedPredictor:
    """The int8 model of an ``encdec quantize`` folder; it runs in OpenVINO, so PyTorch's options do not apply."""
    for given, option in ((args.compile, "--compile"), (args.precision not in ("auto", "fp32"), "--precision"),
                          (args.backend not in ("torch", "openvino"), "--backend"),
                          (bool(args.arg) or args.num_classes is not None, "--arg/--num-classes")):
        if given:
            raise UsageError(f"{option} does not apply to --weights {args.weights}: an int8 model written by "
                             "encdec quantize, run in OpenVINO as it is")
    try:
        model = QuantizedPredictor(args.weights)
    except ImportError as error:
        raise CLIError(str(error)) from None
    architecture = model.encdec_config.get("architecture")
    if args.model is not None and args.model != architecture:
        raise UsageError(f"--weights {args.weights} holds a {architecture}, not a {args.model}")
    return model


def _read_images(paths: Sequence[Path], failed: List[Tuple[Path, str]]) -> List[Tuple[Path, Image.Image]]:
    """The images that can be read, as RGB, in order; the others are added to ``failed`` and reported."""
    read = []
    for path in paths:
        try:
            with open_regular_file(path, "image") as f, Image.open(f) as handle:  # one non-blocking open
                read.append((path, handle.convert("RGB")))
        except (UnidentifiedImageError, OSError, ValueError) as error:
            failed.append((path, f"not a readable image ({error})"))
            print(f"{path}: skipped, not a readable image", file=sys.stderr)
    return read


def _classification_record(path: Path, probs: Any, names: Optional[Sequence[str]]) -> Dict[str, Any]:
    top = int(probs.argmax())
    label = names[top] if names else str(top)
    print(f"{path}: {label} ({float(probs[top]):.3f})")
    return {"image": str(path), "label": label, "index": top, "probability": float(probs[top])}


def _write_segmentation(path: Path, original: Image.Image, labels: Any, stem: Path, palette: str, alpha: float,
                        names: Optional[Sequence[str]], num_classes: int) -> Dict[str, Any]:
    """Write ``STEM_mask.png`` and ``STEM_overlay.png`` for one image; its record for ``predictions.json``."""
    mask = labels.numpy().astype(np.uint8)
    mask_path = stem.parent / f"{stem.name}_mask.png"
    overlay_path = stem.parent / f"{stem.name}_overlay.png"
    save_mask(mask_path, mask, palette=palette)
    Image.fromarray(overlay(np.asarray(original), mask, alpha=alpha, palette=palette)).save(overlay_path)
    present = np.bincount(mask.reshape(-1), minlength=num_classes or 1)
    shares = ", ".join(f"{names[i] if names and i < len(names) else i} {c / mask.size:.0%}"
                       for i, c in enumerate(present) if c)
    print(f"{path}: {mask_path.name}, {overlay_path.name} ({shares})")
    return {"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path),
            "class_pixels": {str(i): int(c) for i, c in enumerate(present) if c}}


def run(args: argparse.Namespace) -> int:
    skipped: List[Path] = []
    paths = expand_images(args.images, skipped)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: is a file; pass a folder for the masks and overlays")
    try:
        ensure_writable_dir(out, option="--out")
    except PermissionError as error:
        raise CLIError(str(error)) from None
    if is_quantized(args.weights):
        model = runner = _quantized(args)
        args.backend = "openvino"
    else:
        model = model_for_inference(args.model, Path(args.weights), args.arg, args.num_classes)
        runner = _runner(model, args)
    info = model_info(model.encdec_config["architecture"])
    names = model.encdec_config.get("class_names")
    num_classes = getattr(model, "num_classes", 0)
    palette = args.palette or ("voc22" if num_classes == 22 else "binary" if num_classes == 2 else "voc")
    size = _prediction_size(model, info.task, args.size, tiled=args.tile is not None)
    if (args.tile is not None or args.tta) and info.task != "segmentation":
        raise UsageError("--tile and --tta apply to segmentation models")
    if args.backend == "torch":
        check_precision(args)
        options: Dict[str, Any] = {"device": args.device, "compile": args.compile, "precision": args.precision}
    else:
        options = {}
    options.update(tile=args.tile, overlap=args.overlap, tta=args.tta, size=size, batch_size=args.batch_size)
    records: List[Dict[str, Any]] = []
    failed: List[Tuple[Path, str]] = []
    stems = output_stems(paths)
    for first in range(0, len(paths), IMAGES_PER_CALL):
        read = _read_images(paths[first : first + IMAGES_PER_CALL], failed)
        if not read:
            continue
        outputs = predict(runner, [np.asarray(image) for _, image in read],
                          probabilities=info.task == "classification", **options)
        for (path, original), output in zip(read, outputs):
            if info.task == "classification":
                records.append(_classification_record(path, output, names))
            else:
                records.append(_write_segmentation(path, original, output, out / stems[path], palette, args.alpha,
                                                   names, num_classes))
    atomic_write_json(records, out / "predictions.json")
    print(f"wrote {len(records)} predictions to {out}/ (predictions.json lists them)")
    if skipped:
        shown = ", ".join(str(p) for p in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        print(f"left out {len(skipped)} file{'s' if len(skipped) != 1 else ''} that are not images "
              f"({', '.join(IMAGE_SUFFIXES)}): {shown}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(paths)} images could not be predicted:", file=sys.stderr)
        for path, reason in failed:
            print(f"  {path}: {reason}", file=sys.stderr)
        return 1
    return 0
