"""``encdec predict``: coloured masks and overlays (segmentation) or classes (classification) for image files."""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from .._registry import model_info
from ..atomic import atomic_write_json
from ..inference import predict
from ..input_spec import input_spec_of
from ..viz import overlay, save_mask
from ._common import FORMAT, CLIError, device, fraction, model_for_inference, positive
from .train import add_model_args

__all__: list = []  # a verb module: parsing and printing, nothing to import

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="colored masks and overlays for images", formatter_class=FORMAT,
                       description=(
        "Predict every image (files or folders): segmentation models write IMAGE_mask.png (a palette PNG whose\n"
        "pixel values are the classes) and IMAGE_overlay.png; classifiers print the class. Images of any size\n"
        "are padded to what the model takes.\n\n"
        "examples:\n  encdec predict --model unet --weights UNet_best_model.pth photos/*.jpg --out masks/\n"
        "  encdec predict --weights runs/unet-shapes shapes/ --out preds/\n"
        "  encdec predict --model resnet34_unet --weights pets.pth cat.jpg --size 256 --out preds/"))
    add_model_args(p, required=False)
    p.add_argument("images", nargs="+", metavar="IMAGES", help="image files or folders")
    p.add_argument("--weights", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--size", type=positive(), help="resize to SIZE x SIZE first (masks are resized back)")
    p.add_argument("--alpha", type=fraction, default=0.5, help="overlay opacity from 0 to 1 (default 0.5)")
    p.add_argument("--palette", choices=["voc", "voc22", "binary", "shapes", "tab10"],
                   help="mask colours (default by number of classes)")
    p.add_argument("--device", type=device, default="auto")
    p.set_defaults(func=run)


def expand_images(items: Sequence[str]) -> List[Path]:
    """Files as given and the images inside folders (sorted, hidden files left out)."""
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


def run(args: argparse.Namespace) -> int:
    paths = expand_images(args.images)
    model = model_for_inference(args.model, Path(args.weights), args.arg, args.num_classes)
    info = model_info(model.encdec_config["architecture"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = model.encdec_config.get("class_names")
    num_classes = getattr(model, "num_classes", 0)
    palette = args.palette or ("voc22" if num_classes == 22 else "binary" if num_classes == 2 else "voc")
    size = args.size
    if info.task == "classification" and size is None:
        spec = input_spec_of(model)
        size = (spec.fixed or spec.reference) if spec is not None else None
    records = []
    stems = output_stems(paths)
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
        mask_path = out / f"{stems[path]}_mask.png"
        overlay_path = out / f"{stems[path]}_overlay.png"
        save_mask(mask_path, mask, palette=palette)
        Image.fromarray(overlay(np.asarray(original), mask, alpha=args.alpha, palette=palette)).save(overlay_path)
        present = np.bincount(mask.reshape(-1), minlength=num_classes or 1)
        shares = ", ".join(f"{names[i] if names and i < len(names) else i} {c / mask.size:.0%}"
                           for i, c in enumerate(present) if c)
        records.append({"image": str(path), "mask": str(mask_path), "overlay": str(overlay_path),
                        "class_pixels": {str(i): int(c) for i, c in enumerate(present) if c}})
        print(f"{path}: {mask_path.name}, {overlay_path.name} ({shares})")
    atomic_write_json(records, out / "predictions.json")
    print(f"wrote {len(records)} predictions to {out}/ (predictions.json lists them)")
    return 0
