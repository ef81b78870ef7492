"""``encdec predict``: coloured masks and overlays (segmentation) or classes (classification) for image files."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path, PurePath
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .._files import IMAGE_SUFFIXES
from .._registry import model_info
from ..atomic import atomic_write_json, ensure_writable_dir
from ..batches import NonFiniteError
from ..deployment import BACKENDS, OnnxPredictor
from ..image_files import ImageTooLargeError, UnreadableImageError, open_image
from ..inference import predict
from ..input_spec import input_spec_of
from ..quantization import QuantizedPredictor, is_quantized
from ..viz import get_palette, overlay, save_mask
from ._common import (
    FORMAT,
    CLIError,
    UsageError,
    add_max_pixels_arg,
    device,
    fraction,
    max_pixels,
    model_for_inference,
    positive,
    recorded_preprocessing,
    recorded_size,
    stderr,
)
from .train import add_model_args, check_precision

__all__: list = []  # a verb module: parsing and printing, nothing to import


#: Images read and handed to one ``encdec.predict`` call (in batches of ``--batch-size``): memory holds this many
#: decoded images at a time, however many are given.
IMAGES_PER_CALL = 64

#: The file listing every prediction, and the endings of the two files written per segmented image.
PREDICTIONS_FILE = "predictions.json"
OUTPUT_ENDINGS = ("_mask.png", "_overlay.png")
#: Classes a palette PNG holds (8 bits a pixel); masks of models with more are 16-bit greyscale PNGs, which hold
#: up to ``MAX_MASK_CLASSES``.
PALETTE_CLASSES = 256
MAX_MASK_CLASSES = 65536


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="colored masks and overlays for images", formatter_class=FORMAT,
                       description=(
        "Predict every image (files or folders): segmentation models write IMAGE_mask.png (a palette PNG whose\n"
        "pixel values are the classes; a 16-bit PNG for more than 256 classes) and IMAGE_overlay.png, IMAGE\n"
        "being the image's path relative to the folder all images share (p/q/x.png and r/q/x.png give p/q/x and\n"
        "r/q/x); classifiers print the class. Images of any size are padded to what the model takes; images of\n"
        "one size run in batches (--batch-size).\n\n"
        "examples:\n  encdec predict --model unet --weights UNet_best_model.pth photos/*.jpg --out masks/\n"
        "  encdec predict --weights runs/unet-shapes shapes/ --out preds/\n"
        "  encdec predict --model resnet34_unet --weights pets.pth cat.jpg --size 256 --out preds/\n"
        "  encdec predict --weights runs/unet-shapes big_photos/ --out preds/ --size native   # each at its own size\n"
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
    p.add_argument("--size", type=_size, metavar="SIZE|native",
                   help="resize to SIZE x SIZE first, masks resized back; native: each image at its own size, padded "
                   "to the model's size rule (default: the training size recorded with the weights; else each "
                   "image's own size, classifiers their input size)")
    p.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity from 0 to 1 (default 0.5)")
    p.add_argument("--palette", choices=["voc", "voc22", "binary", "shapes", "tab10"],
                   help="mask colours (default: the colours recorded with the weights, else by number of classes)")
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
    add_max_pixels_arg(p)
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


def unique_images(paths: Sequence[Path]) -> List[Path]:
    """``paths`` without repeats of one file (given twice, or given and inside a folder given), in order."""
    seen: set = set()
    kept = []
    for p in paths:
        key = os.path.normcase(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            kept.append(p)
    return kept


def _claims(stem: PurePath) -> Tuple[List[str], List[str]]:
    """The output files of ``stem`` and the folders they need, lower-cased (a file system may ignore case)."""
    files = [str(stem.parent / f"{stem.name}{end}").lower() for end in OUTPUT_ENDINGS]
    folders = [str(PurePath(*stem.parts[:i])).lower() for i in range(1, len(stem.parts))]
    return files, folders


def output_stems(paths: Sequence[Path]) -> Dict[Path, PurePath]:
    """A distinct output stem per image, relative to ``--out``: the image's path relative to the folder all the
    images share, without its suffix (``p/q/x.png`` and ``r/q/x.png`` give ``p/q/x`` and ``r/q/x``; images of one
    folder give their stems); the suffix is kept when two images of one folder share a stem (``x.png``,
    ``x.jpg``), and ``-2``, ``-3`` ... are added to a name that would still clash (names that differ only in case,
    a folder and a file of one name), so no output of one call overwrites another.

    Example:
        >>> stems = output_stems([Path("p/q/x.png"), Path("r/q/x.png"), Path("r/q/x.jpg")])
        >>> [str(s) for s in stems.values()]
        ['p/q/x', 'r/q/x.png', 'r/q/x.jpg']
        >>> [str(s) for s in output_stems([Path("a/x.png"), Path("a/y.png")]).values()]
        ['x', 'y']
    """
    if not paths:
        return {}
    absolute = [os.path.abspath(p) for p in paths]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    relative = [PurePath(os.path.relpath(a, root)) for a in absolute]
    stems = Counter((str(r.parent).lower(), r.stem.lower()) for r in relative)
    taken_files, taken_folders = {PREDICTIONS_FILE}, set()
    chosen: Dict[Path, PurePath] = {}
    for path, rel in zip(paths, relative):
        stem = rel.parent / (rel.stem if stems[(str(rel.parent).lower(), rel.stem.lower())] == 1 else rel.name)
        if any(folder in taken_files for folder in _claims(stem)[1]):  # a folder where a file was written
            stem = PurePath("_".join(stem.parts))
        candidate, n = stem, 1
        while True:
            files, folders = _claims(candidate)
            if not any(f in taken_files or f in taken_folders for f in files):
                break
            n += 1
            candidate = stem.parent / f"{stem.name}-{n}"
        taken_files.update(files)
        taken_folders.update(folders)
        chosen[path] = candidate
    return chosen


#: ``--size native``: each image at its own size (padded to the model's size rule, the output cropped back).
NATIVE = "native"


def _size(text: str) -> Any:
    """``--size``: a positive side, or ``native``."""
    return NATIVE if text == NATIVE else positive()(text)


def _prediction_size(model: Any, task: str, requested: Any, tiled: bool = False) -> Optional[int]:
    """The side images are resized to for the model (``None``: their own size); outputs come back at each image's
    size. ``--size`` wins (``native``: their own size); else the training size recorded with the weights (a model
    trained on images stretched to 64x64 has learned objects at that scale, so it sees photos the same way),
    resized the way training did; else classifiers use their reference input size and segmentation models each
    image's own size."""
    if requested == NATIVE:
        return None
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
    try:
        return OnnxPredictor.from_model(model, backend=args.backend)
    except ImportError as error:  # the runtime is not installed: the message names the extra
        raise CLIError(f"--backend {args.backend}: {error}") from None


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


def _read_images(paths: Sequence[Path], failed: List[Tuple[Path, str]], pixels: Optional[int]
                 ) -> List[Tuple[Path, Image.Image]]:
    """The images that can be read, as RGB and upright by their EXIF orientation, in order; the others (an image
    above ``--max-pixels`` among them, refused before decoding) are added to ``failed`` and reported."""
    read = []
    for path in paths:
        try:
            image = open_image(path, pixels)  # one non-blocking open, the size checked before decoding
            read.append((path, image if image.mode == "RGB" else image.convert("RGB")))
        except ImageTooLargeError as error:
            failed.append((path, error.describe("--max-pixels", with_path=False)))
            print(f"{path}: skipped, above --max-pixels {pixels}", file=sys.stderr)
        except (UnreadableImageError, OSError) as error:
            reason = error.reason if isinstance(error, UnreadableImageError) else str(error)
            failed.append((path, f"not a readable image ({reason})"))
            print(f"{path}: skipped, not a readable image", file=sys.stderr)
    return read


def _classification_record(path: Path, probs: Any, names: Optional[Sequence[str]]) -> Dict[str, Any]:
    top = int(probs.argmax())
    label = names[top] if names and top < len(names) else str(top)
    print(f"{path}: {label} ({float(probs[top]):.3f})")
    return {"image": str(path), "label": label, "index": top, "probability": float(probs[top])}


def _mask_palette(palette: Any, num_classes: int) -> Any:
    """The colours of ``palette`` (a name or colours), repeated to cover ``num_classes`` when it has fewer
    (overlays of models with more than 256 classes reuse colours; the masks hold the classes exactly)."""
    colours = get_palette(palette)
    return colours if num_classes <= len(colours) else np.resize(colours, (num_classes, 3))


def _write_segmentation(path: Path, original: Image.Image, labels: Any, out: Path, stem: PurePath, palette: Any,
                        alpha: float, names: Optional[Sequence[str]], num_classes: int) -> Dict[str, Any]:
    """Write ``STEM_mask.png`` and ``STEM_overlay.png`` for one image; its record for ``predictions.json``.

    The mask is a palette PNG (8 bits a pixel) for up to 256 classes, else a 16-bit greyscale PNG; either way its
    pixel values are the classes."""
    classes = labels.numpy().astype(np.int64)
    top = int(classes.max()) + 1 if classes.size else 0
    wide = max(num_classes, top) > PALETTE_CLASSES
    palette = _mask_palette(palette, top)
    mask_path, overlay_path = (out / stem.parent / f"{stem.name}{end}" for end in OUTPUT_ENDINGS)
    mask_path.parent.mkdir(parents=True, exist_ok=True)
    save_mask(mask_path, classes, palette=palette, bits=16 if wide else 8)
    Image.fromarray(overlay(np.asarray(original), classes, alpha=alpha, palette=palette)).save(overlay_path)
    present = np.bincount(classes.reshape(-1), minlength=num_classes or 1)
    shares = ", ".join(f"{names[i] if names and i < len(names) else i} {c / classes.size:.0%}"
                       for i, c in enumerate(present) if c)
    print(f"{path}: {mask_path.relative_to(out)}, {overlay_path.relative_to(out)} ({shares})")
    return {"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path),
            "class_pixels": {str(i): int(c) for i, c in enumerate(present) if c}}


def _predict_read(runner: Any, read: Sequence[Tuple[Path, Image.Image]], options: Dict[str, Any],
                  probabilities: bool) -> List[Any]:
    """``encdec.predict`` on the images read; outputs that are NaN or infinite are an error naming the files."""
    try:
        # PIL images, not arrays: tiled prediction converts them band by band
        return predict(runner, [image for _, image in read], probabilities=probabilities, **options)
    except NonFiniteError as error:
        shown = ", ".join(str(p) for p, _ in read[:3]) + (f" and {len(read) - 3} more" if len(read) > 3 else "")
        raise CLIError(f"{shown}: {error}") from None


def run(args: argparse.Namespace) -> int:
    skipped: List[Path] = []
    paths = unique_images(expand_images(args.images, skipped))
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
    num_classes = getattr(model, "num_classes", None) or 0
    if num_classes > MAX_MASK_CLASSES and info.task == "segmentation":
        raise CLIError(f"--weights {args.weights}: the model has {num_classes} outputs; masks hold at most "
                       f"{MAX_MASK_CLASSES} classes (16-bit PNG)")
    palette = _mask_palette(args.palette or recorded_preprocessing(model).get("palette") or (
        "voc22" if num_classes == 22 else "binary" if num_classes == 2 else "voc"), num_classes)
    size = _prediction_size(model, info.task, args.size, tiled=args.tile is not None)
    if (args.tile is not None or args.tta) and info.task != "segmentation":
        raise UsageError("--tile and --tta apply to segmentation models")
    if args.backend == "torch":
        check_precision(args)
        options: Dict[str, Any] = {"device": args.device, "compile": args.compile, "precision": args.precision}
    else:
        options = {}
    options.update(tile=args.tile, overlap=args.overlap, tta=args.tta, size=size, batch_size=args.batch_size,
                   max_pixels=None)  # each file's size was checked against --max-pixels before it was decoded
    records: List[Dict[str, Any]] = []
    failed: List[Tuple[Path, str]] = []
    stems = output_stems(paths)
    for first in range(0, len(paths), IMAGES_PER_CALL):
        read = _read_images(paths[first : first + IMAGES_PER_CALL], failed, max_pixels(args))
        if not read:
            continue
        outputs = _predict_read(runner, read, options, probabilities=info.task == "classification")
        for (path, original), output in zip(read, outputs):
            if info.task == "classification":
                records.append(_classification_record(path, output, names))
            else:
                records.append(_write_segmentation(path, original, output, out, stems[path], palette, args.alpha,
                                                   names, num_classes))
    atomic_write_json(records, out / PREDICTIONS_FILE)
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
