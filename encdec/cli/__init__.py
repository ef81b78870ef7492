"""The ``encdec`` command: ``list``, ``info``, ``convert``, ``train``, ``recipes``, ``eval``, ``predict``, ``quantize``,
``demo``.

One small module per verb parses its arguments, calls the library and prints; the logic lives in the library
(``encdec.summary``, ``encdec.datasets.from_spec``, ``encdec.convert_checkpoint``, ``encdec.fit``,
``encdec.evaluate``, ``encdec.predict``, ``encdec.quantize``, ``encdec.viz``). ``encdec VERB --help`` shows each verb's
options with examples.

Exit status: 0 on success, 2 for a usage error (an unknown model, a malformed ``--data``, an option out of
range), 1 for a failure (a missing file or folder, a checkpoint that does not fit, a failed check, outputs that
turn NaN); either way one line on standard error says what to fix. ``--debug`` shows the full traceback instead.
Only the library's own error classes become messages (``_KNOWN_ERRORS``); any other exception is a bug and is
raised.

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
import os
import sys
from typing import Optional, Sequence

from .._version import __version__
from ..batches import NonFiniteError
from ..datasets import CorruptImageError
from ..demo import DemoError
from ..export import ExportError
from ..image_files import ImageTooLargeError
from . import convert, demo, evaluate, info, listing, predict, quantize, recipes, train
from ._common import FORMAT, CLIError, UsageError, parse_data

__all__ = ["main", "build_parser", "CLIError", "UsageError", "parse_data"]

PROG = "encdec"
_VERBS = (listing, info, convert, train, recipes, evaluate, predict, quantize, demo)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors that point at ``--help``."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``encdec`` argument parser (one sub-command per verb).

    Example:
        >>> build_parser().parse_args(["info", "unet", "--size", "128"]).size
        128
    """
    parser = _Parser(prog=PROG, formatter_class=FORMAT, description=(
        "Encoder-decoder segmentation networks and CNN classifiers, faithful to their reference checkpoints.\n\n"
        "first steps:\n"
        "  encdec demo                     train a small U-Net on synthetic shapes (a minute or two on a CPU)\n"
        "  encdec list                     the models, their sizes and the checkpoints they load\n"
        "  encdec VERB --help              options and examples of one verb"))
    parser.add_argument("--version", action="version", version=f"encdec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb in _VERBS:
        verb.add_parser(sub)
    for verb_parser in sub.choices.values():  # --debug also after the verb; SUPPRESS keeps one given before it
        verb_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                                 help="show full tracebacks on errors")
    return parser


#: What the library raises for input a user can fix, shown as one line and exit status 1 (``--debug`` shows the
#: traceback): files that are missing, unreadable or hostile (``OSError``, ``WeightsError`` and the other
#: ``ValueError``s), outputs or losses that turn NaN (``NonFiniteError``), a model that cannot be exported
#: (``ExportError``), a failed demo. Anything else is a bug and keeps its traceback.
_KNOWN_ERRORS = (OSError, ValueError, NonFiniteError, ExportError, DemoError)


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
    argv = [str(a) for a in (sys.argv[1:] if argv is None else argv)]
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
    except _KNOWN_ERRORS as error:
        if args.debug:
            raise
        if isinstance(error, ImageTooLargeError):  # the command line's own option, not the library's argument
            error = error.describe("--max-pixels")
        if isinstance(error, CorruptImageError):  # the library's advice names skip_corrupt=True; here it is a flag
            error = f"cannot decode {error.path}: {error.reason}; replace the file, or pass --skip-corrupt to leave " \
                    "unusable samples out"
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
