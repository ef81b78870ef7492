"""``encdec quantize RUN --calibrate DIR --out RUN-int8``: an int8 model (OpenVINO + NNCF) that keeps the labels."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..quantization import QuantizationError, quantize
from ._common import FORMAT, CLIError, fraction, model_for_inference, positive, stderr
from .predict import expand_images
from .train import add_model_args

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="int8 model for the CPU, checked against fp32", formatter_class=FORMAT,
                       description=(
        "Quantize a trained model to int8 with OpenVINO's NNCF, calibrated on images like the ones it will see\n"
        "(prepared as `encdec predict` prepares them: the training size and normalisation recorded with the\n"
        "weights). The last --held-out share of the images is not calibrated on: the int8 labels are compared\n"
        "with fp32's there, and below --min-agreement (default 0.99) NNCF's accuracy control keeps the layers\n"
        "that change labels most in fp32; if even that misses, nothing is written (--warn-only writes it anyway).\n"
        "OUT is a folder (model.xml + model.bin) carrying the class names, size rule and normalisation; pass it\n"
        "to `encdec predict --weights OUT`. Needs the openvino extra: pip install 'encdec[openvino]'.\n\n"
        "examples:\n  encdec quantize runs/unet-shapes --calibrate shapes/ --out runs/unet-shapes-int8\n"
        "  encdec predict --weights runs/unet-shapes-int8 shapes/ --out preds/\n"
        "  encdec quantize --model unet --weights UNet_best_model.pth --calibrate photos/ --out unet-int8"))
    add_model_args(p, required=False)
    p.add_argument("run", nargs="?", metavar="RUN", help="a run folder of `encdec train`, a save_pretrained folder "
                   "or a checkpoint (or pass --weights)")
    p.add_argument("--weights", metavar="FILE", help="the checkpoint, when not given as RUN")
    p.add_argument("--calibrate", required=True, metavar="DIR", help="folder of calibration images (a few "
                   "hundred like the ones the model will see; 300 are read at most)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write model.xml and model.bin to")
    p.add_argument("--min-agreement", type=fraction, default=0.99, metavar="SHARE",
                   help="share of held-out labels that must equal fp32's (default 0.99)")
    p.add_argument("--held-out", type=fraction, default=0.25, metavar="SHARE",
                   help="share of the calibration images kept for the comparison (default 0.25)")
    p.add_argument("--max-images", type=positive(), default=300, metavar="N", help="calibration images read at most")
    p.add_argument("--size", type=positive(), help="resize to SIZE x SIZE (default: the training size recorded "
                   "with the weights)")
    p.add_argument("--warn-only", action="store_true", help="write the model even below --min-agreement")
    p.add_argument("--no-fallback", action="store_true", help="no accuracy-control retry below --min-agreement")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.weights is None):
        raise CLIError("pass the model as RUN or as --weights FILE (one of them)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out}: is a file; pass a folder for model.xml and model.bin")
    images = expand_images([args.calibrate])
    model = model_for_inference(args.model, Path(args.run or args.weights), args.arg, args.num_classes)
    try:
        quantized = quantize(model, images, min_agreement=args.min_agreement, held_out=args.held_out,
                             max_images=args.max_images, fallback=not args.no_fallback,
                             on_low_agreement="warn" if args.warn_only else "raise",
                             size=args.size if args.size is not None else "auto", log=stderr)
    except ImportError as error:
        raise CLIError(str(error)) from None
    except QuantizationError as error:
        raise CLIError(f"{error}; nothing written (--warn-only writes it anyway)") from None
    quantized.save(out)
    report = quantized.report
    print(f"wrote {out}/ (model.xml, model.bin): {report.summary() if report else 'int8'}")
    print(f"predict with it: encdec predict --weights {out} IMAGES --out DIR")
    return 0
