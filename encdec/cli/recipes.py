"""``encdec recipes``: the training recipes of the course reports and the improved ones."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from ..training import recipes
from ._common import FORMAT, UsageError, table

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the training recipes of the course reports", formatter_class=FORMAT,
                       description=(
        "List the recipes `encdec train --recipe NAME` runs: each course report's model, preprocessing,\n"
        "optimizer, schedule, batch size, epochs, loss and monitored metric (its defects kept, and said), and an\n"
        "improved recipe per task.\n\nexamples:\n  encdec recipes\n  encdec recipes voc_unet_course\n"
        "  encdec recipes --json"))
    p.add_argument("name", nargs="?", help="show one recipe in full")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name is not None:
        try:
            recipe = recipes.get(args.name)
        except ValueError as error:
            raise UsageError(str(error)) from None
        fields = asdict(recipe)
        if args.json:
            print(json.dumps(fields, indent=2))
            return 0
        if not recipe.ran_in_report:
            print(f"note               {recipe.report} defines this model but never runs it")
        hidden = ("defects", "not_in_report", "ran_in_report")
        for key, value in fields.items():
            if key not in hidden:
                mark = "   [encdec's choice: not in the report]" if key in recipe.not_in_report else ""
                print(f"{key:<19}{value}{mark}")
        for defect in recipe.defects:
            print(f"defect kept        {defect}")
        return 0
    rows = [recipes.get(name) for name in recipes.names()]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print(table([(r.name + ("" if r.ran_in_report else " (never run)"), r.report, r.model, r.data, r.optimizer,
                  f"{r.lr:g}", r.batch_size, r.epochs,
                  f"{r.scheduler} per {r.scheduler_interval}" if r.scheduler != "none" else "none", r.loss,
                  r.monitor) for r in rows],
                ["recipe", "report", "model", "data", "optimizer", "lr", "batch", "epochs", "schedule", "loss",
                 "monitor"], "lllllrrrlll"))
    print("\n`encdec recipes NAME` shows one in full; `encdec train --recipe NAME --data KIND:PATH` runs it.")
    return 0
