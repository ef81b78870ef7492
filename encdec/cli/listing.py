"""``encdec list``: the registered models, their sizes and the checkpoints they load."""

from __future__ import annotations

import argparse
import json

from .._registry import list_models, model_info
from ..summary import count_parameters
from ._common import FORMAT, UsageError, table

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the models", formatter_class=FORMAT, description=(
        "List the registered models: task, parameters, reference input size, input-size rule and the reference\n"
        "checkpoints each loads.\n\nexamples:\n  encdec list\n  encdec list 'resnet*' --task segmentation\n"
        "  encdec list --json"))
    p.add_argument("pattern", nargs="?", help="shell pattern on the names, e.g. 'resnet*'")
    p.add_argument("--task", choices=["segmentation", "classification"])
    p.add_argument("--names", action="store_true", help="names only, one per line")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = list_models(args.pattern, task=args.task)
    if not names:
        raise UsageError(f"no model matches {args.pattern!r}; `encdec list` shows them all")
    if args.names:
        print("\n".join(names))
        return 0
    rows = []
    for name in names:
        info = model_info(name)
        refs = ", ".join(r.filename for r in info.reference_checkpoints)
        rows.append({"name": name, "task": info.task, "parameters": count_parameters(name),
                     "input_size": info.input_size, "size_rule": info.size_rule, "reference_checkpoints": refs,
                     "summary": info.summary})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(table([(r["name"], r["task"], f"{r['parameters']:,}", r["input_size"], r["size_rule"],
                  r["reference_checkpoints"]) for r in rows],
                ["model", "task", "parameters", "input", "input-size rule", "reference checkpoints"], "llrrll"))
    print("\n`encdec info MODEL` shows layers, FLOPs and memory; `encdec train --model MODEL` trains one.")
    return 0
