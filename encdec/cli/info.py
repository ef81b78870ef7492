"""``encdec info MODEL``: layers, parameters, FLOPs and memory of a model, without allocating it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .._json import jsonable
from ..input_spec import InputSizeError
from ..summary import model_summary
from ._common import (
    FORMAT,
    UsageError,
    add_encoder_argument,
    human_bytes,
    human_count,
    lookup_model,
    parse_model_args,
    positive,
    table,
)

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="layers, parameters, FLOPs and memory of a model", formatter_class=FORMAT,
                       description=(
        "Describe one model without allocating it: layer summary, parameters, FLOPs per image\n"
        "(torch.utils.flop_counter), the memory of a float32 training step with Adam at a batch size, and the\n"
        "reference checkpoints it accepts.\n\nexamples:\n  encdec info unet\n  encdec info resnet34_unet --size 512 "
        "--batch-size 4\n  encdec info fpn --encoder efficientnet_b0\n"
        "  encdec info unet --encoder resnet34 --num-classes 2 --json"))
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--size", type=positive(), help="input side (default: the reference size)")
    p.add_argument("--batch-size", type=positive(), default=8, help="batch of the memory estimate (default 8)")
    p.add_argument("--depth", type=positive(), default=2, help="module depth of the layer summary (default 2)")
    p.add_argument("--num-classes", type=positive(), metavar="N")
    add_encoder_argument(p)
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE", help="builder argument (JSON value)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    lookup_model(args.model)
    kwargs = parse_model_args(args.model, args.arg, args.encoder)
    if args.num_classes is not None:
        kwargs["num_classes"] = args.num_classes
    try:
        report = model_summary(args.model, args.size, batch_size=args.batch_size, depth=args.depth, **kwargs)
    except InputSizeError as error:
        raise UsageError(f"--size {args.size}: {error}") from None
    except (TypeError, ValueError) as error:
        raise UsageError(f"{args.model}: {error}") from None
    if args.json:
        print(json.dumps(jsonable(report, finite=True), indent=2))
        return 0
    size, mem = report["input_size"], report["memory"]
    print(f"{report['name']}: {report['summary']}")
    print(f"task: {report['task']}; input {'x'.join(map(str, report['input_shape']))} -> output "
          f"{'x'.join(map(str, report['output_shape']))} per image")
    print(f"input-size rule: {report['size_rule']}")
    print(f"parameters: {report['parameters']:,} ({human_bytes(mem['weights'])} in float32)")
    variants = report["variants"]
    if variants:
        print("layouts (--arg variant=NAME; a checkpoint's shapes choose when none is named): " + "; ".join(
            f"{v}{' (default)' if v == variants['default'] else ''} {n:,} parameters"
            for v, n in variants["parameters"].items()) + f"; this is {variants['built']}")
    print(f"FLOPs: {human_count(report['flops_per_image'], 'FLOPs')} per {size}x{size} image, forward "
          f"(a multiply-add counts 2)")
    print(f"memory of one float32 training step with Adam at batch {mem['batch_size']} (estimate): "
          f"{human_bytes(mem['total'])} = weights {human_bytes(mem['weights'])} + gradients "
          f"{human_bytes(mem['gradients'])} + Adam state {human_bytes(mem['adam_state'])} + activations "
          f"{human_bytes(mem['activations'])}")
    print("\nlayers:")
    runs = {r["name"]: f" (run {r['calls']}x)" if r["calls"] > 1 else "" for r in report["layers"]}
    print(table([(("  " * (r["level"] - 1)) + r["name"], r["type"] + runs[r["name"]],
                  "x".join(map(str, r["output"])) if r["output"] else "-", f"{r['parameters']:,}")
                 for r in report["layers"]], ["module", "type", "output (per image)", "parameters"], "lllr"))
    refs = report["reference_checkpoints"]
    print("\nreference checkpoints it loads:" if refs else "\nreference checkpoints: none")
    built = report["output_shape"][0] if args.num_classes is None else None  # per image: the default outputs
    for r in refs:
        extra = f"; {r['reached']}" if r["reached"] else ""
        print(f"  {r['filename']}: {r['dataset']}, {r['num_classes']} outputs, {r['input_size']}x{r['input_size']}"
              f"{extra}")
        same = built == r["num_classes"]
        py_nc, sh_nc = ("", "") if same else (f"num_classes={r['num_classes']}, ", f" --num-classes {r['num_classes']}")
        print(f"    python: encdec.{report['name']}({py_nc}weights=\"{r['filename']}\")")
        print(f"    shell:  encdec convert {r['filename']} {Path(r['filename']).stem}.safetensors "
              f"--model {report['name']}{sh_nc}")
    return 0
