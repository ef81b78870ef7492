"""``encdec convert IN OUT --model NAME``: any supported checkpoint -> safetensors with metadata, verified."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..pretrained import convert_checkpoint, saved_architecture
from ..weights import WeightsError
from ..weights.formats import check_regular_file
from ._common import (
    FORMAT,
    UsageError,
    add_encoder_argument,
    human_bytes,
    lookup_model,
    parse_model_args,
    positive,
    stderr,
)

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="checkpoint -> safetensors with metadata, verified", formatter_class=FORMAT,
                       description=(
        "Convert any supported checkpoint (a reference .pth/.ckpt, an encdec checkpoint, safetensors) into a\n"
        "safetensors file that records the architecture, its arguments and the normalisation, then reload it\n"
        "and check weights and outputs are identical. Checkpoints are read without running pickled code.\n\n"
        "examples:\n  encdec convert vgg16_epoch250.ckpt vgg16.safetensors --model vgg16_cifar\n"
        "  encdec convert UNet_best_model.pth unet_voc.safetensors --model unet\n"
        "  encdec convert ResNet_UNet_best_model_90.pth pets/ --model resnet34_unet --class-names background,pet\n"
        "  encdec convert smp-unet/ unet-encdec/   # a segmentation_models_pytorch save_pretrained folder"))
    p.add_argument("input", metavar="IN", help="checkpoint file, or a save_pretrained folder (encdec's or "
                   "segmentation_models_pytorch's)")
    p.add_argument("output", metavar="OUT", help="a .safetensors file, or a folder (config.json + model.safetensors)")
    p.add_argument("--model", metavar="NAME", help="a model name from `encdec list` (not needed for a folder or "
                   "file that records its architecture)")
    p.add_argument("--num-classes", type=positive(), metavar="N", help="number of outputs")
    add_encoder_argument(p)
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="other builder argument, JSON value (repeatable), e.g. --arg widths=[16,32,64,128,256]")
    p.add_argument("--class-names", metavar="A,B,...", help="class names to store, comma-separated")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    src, dst = Path(args.input), Path(args.output)
    if not src.is_dir():
        check_regular_file(src)  # a FIFO, device or broken link is named as such
    recorded = saved_architecture(src)  # a folder's config (smp's read option by option), or a file's metadata
    if args.model is None and recorded is None:
        raise UsageError(f"{src} does not record its architecture: pass --model NAME (see `encdec list`)")
    if args.model is not None and recorded is not None and args.model != recorded:
        raise UsageError(f"{src} holds a {recorded}, not a {args.model}; leave --model out")
    args.model = args.model or recorded
    lookup_model(args.model)
    kwargs = parse_model_args(args.model, args.arg, args.encoder)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    try:
        written = convert_checkpoint(src, dst, args.model, class_names=names, log=stderr, **kwargs)
    except WeightsError:
        raise
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    print(f"wrote {dst} ({human_bytes(written.stat().st_size)}); verified: reloaded weights and outputs identical")
    print(f"load it with: encdec.from_pretrained(\"{dst}\")")
    return 0
