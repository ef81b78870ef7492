"""What every verb of the command line shares: its two error kinds, argument types that fail early with a clear
message, table formatting, and building or loading the model a verb works on."""

from __future__ import annotations

import argparse
import inspect
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from .._registry import ModelInfo, create_model, list_models, model_info
from ..datasets import DATA_KINDS, DataFolderError, DataSpec, DataSpecError, from_spec, parse_spec
from ..datasets.check import DataProblem, check_dataset, without_problems
from ..image_files import MAX_PIXELS
from ..input_spec import input_spec_of
from ..preprocessing import recorded_preprocessing, recorded_size
from ..pretrained import load_model, saved_architecture
from ..weights import read_state_dict
from ..weights.formats import describe_non_file

__all__ = [
    "CLIError", "UsageError", "FORMAT", "QUICK_CHECK_SAMPLES", "at_least", "build_model", "check_size",
    "checked_data", "data_failure", "list_skipped", "device", "open_data", "say_classes", "fraction", "human_bytes",
    "add_encoder_argument", "human_count", "lookup_model", "model_for_inference", "parse_data", "parse_model_args",
    "positive",
    "recorded_preprocessing", "recorded_size", "stderr", "table",
]

FORMAT = argparse.RawDescriptionHelpFormatter


class CLIError(Exception):
    """A failure the user can fix (exit status 1); the message says how.

    Example:
        >>> CLIError("no such file").exit_code
        1
    """

    exit_code = 1


class UsageError(CLIError):
    """A command line that cannot be run as given (exit status 2).

    Example:
        >>> UsageError("unknown model").exit_code
        2
    """

    exit_code = 2


def data_failure(error: FileNotFoundError) -> CLIError:
    """The one-line failure for a missing dataset folder or file, naming the ``--data`` option.

    Example:
        >>> print(data_failure(DataFolderError("dataset folder d does not exist", "pet", "the pet folder")))
        dataset folder d does not exist; --data pet:PATH expects the pet folder
    """
    if isinstance(error, DataFolderError):
        return CLIError(f"{error.problem}; --data {error.kind}:PATH expects {error.layout}")
    return CLIError(str(error))


def stderr(line: str) -> None:
    """Print a line to standard error (standard output stays clean for ``--json``)."""
    print(line, file=sys.stderr)


# ---------------------------------------------------------------------------------------------- argument types


def positive(kind: type = int) -> Callable[[str], Any]:
    """An argparse type accepting positive numbers of ``kind``."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return convert


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type accepting integers ``>= minimum``."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return convert


def add_max_pixels_arg(parser: argparse.ArgumentParser) -> None:
    """``--max-pixels N`` (train, eval, predict): images with more pixels are refused before they are decoded."""
    parser.add_argument("--max-pixels", type=at_least(0), default=MAX_PIXELS, metavar="N",
                        help=f"refuse images of more than N pixels (width x height) before decoding them (default "
                             f"{MAX_PIXELS}, Pillow's decompression-bomb threshold; 0: no limit)")


def max_pixels(args: argparse.Namespace) -> Optional[int]:
    """The pixel limit ``--max-pixels`` gives the library (``None``: no limit)."""
    return args.max_pixels or None


def fraction(text: str) -> float:
    """An argparse type accepting numbers from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def device(text: str) -> str:
    """``auto`` or a torch device this machine has (checked before any work starts)."""
    if text == "auto":
        return text
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda, cuda:1 or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: CUDA is not available on this machine; use cpu or auto")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available on this machine; use cpu or auto")
    return text


def parse_data(text: str) -> DataSpec:
    """``--data KIND[:PATH]`` as a ``DataSpec``; a usage error names what is wrong.

    Example:
        >>> parse_data("shapes:64").count
        64
    """
    kind, _, path = text.partition(":")
    if not path and kind.lower() in DATA_KINDS and kind.lower() != "shapes":
        raise UsageError(f"--data {text!r}: give the folder, e.g. --data {kind}:PATH where PATH is "
                         f"{DATA_KINDS[kind.lower()].layout}")
    try:
        return parse_spec(text)
    except DataSpecError as error:
        raise UsageError(f"--data {error}") from None


def open_data(spec: DataSpec, split: str, **kwargs: Any) -> Any:
    """``from_spec`` for a verb: a malformed spec is a usage error, a missing folder or a folder that cannot be read
    as given a failure; the dataset's warnings are left to ``say_classes`` and ``checked_data``, which print them
    where they are seen."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # classes discovered in the masks: said by say_classes
            warnings.simplefilter("ignore", RuntimeWarning)  # files left out (skip_corrupt): listed by checked_data
            return from_spec(spec, split, **kwargs)
    except DataSpecError as error:
        raise UsageError(f"--data {error}") from None
    except FileNotFoundError as error:
        raise data_failure(error) from None


def say_classes(dataset: Any) -> None:
    """One line naming a folder dataset's classes and where they came from (the others' are fixed)."""
    source = getattr(dataset, "classes_source", None)
    if source is None:
        return
    hint = "; write classes.txt beside the folders (one name per line) to name them" if "discovered" in source else ""
    stderr(f"classes ({source}): {', '.join(dataset.class_names)}{hint}")


# ---------------------------------------------------------------------------------------------- output


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    Example:
        >>> human_bytes(1536)
        '1.5 KiB'
    """
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_count(n: float, unit: str = "") -> str:
    """``2.5e9`` -> ``'2.50 GFLOPs'`` with ``unit="FLOPs"``.

    Example:
        >>> human_count(2.5e9, "FLOPs")
        '2.50 GFLOPs'
    """
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n:.0f} {unit}".rstrip()


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], align: str = "") -> str:
    """A plain-text table; ``align`` has one ``l``/``r`` per column (default: left).

    Example:
        >>> print(table([("a", 1)], ["name", "n"], "lr"))
        name  n
        ----  -
        a     1
    """
    cells = [[str(c) for c in headers]] + [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(row: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align)).rstrip()

    return "\n".join([line(cells[0]), line(["-" * w for w in widths])] + [line(r) for r in cells[1:]])


# ---------------------------------------------------------------------------------------------- models


def lookup_model(name: str) -> ModelInfo:
    """The registry entry of ``name``; an unknown name is a usage error listing close matches."""
    try:
        return model_info(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def add_encoder_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--encoder NAME`` option of the verbs that build a model."""
    parser.add_argument("--encoder", metavar="NAME",
                        help="encoder of unet/fpn/deeplabv3plus: a torchvision backbone (resnet34, efficientnet_b0, "
                             "...) or timm:NAME")


def parse_model_args(name: str, pairs: Sequence[str], encoder: Optional[str] = None) -> Dict[str, Any]:
    """``--arg KEY=VALUE`` pairs (values read as JSON when they parse) and ``--encoder`` as builder keyword
    arguments."""
    info = lookup_model(name)
    accepted = [p for p in inspect.signature(info.builder).parameters if p != "weights"]
    out: Dict[str, Any] = {}
    if encoder is not None:
        if "encoder" not in accepted:
            with_encoder = [n for n in list_models()
                            if "encoder" in inspect.signature(model_info(n).builder).parameters]
            raise UsageError(f"--encoder: {name} takes no encoder; {', '.join(with_encoder)} do")
        out["encoder"] = encoder
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


def build_model(name: str, kwargs: Dict[str, Any], weights: Optional[Path] = None, *, partial: bool = False
                ) -> torch.nn.Module:
    """Build ``name`` (a builder error is a usage error) and load ``weights`` (strict unless ``partial``)."""
    def usage(error: Exception) -> UsageError:
        text = str(error)
        return UsageError(text if text.startswith(f"{name}: ") else f"{name}: {text}")

    if weights is None:
        try:
            return create_model(name, **kwargs)
        except (TypeError, ValueError) as error:
            raise usage(error) from None
    try:
        return load_model(weights, name, strict=not partial, log=stderr, **kwargs)
    except TypeError as error:
        raise usage(error) from None


def model_for_inference(model_name: Optional[str], weights: Path, pairs: Sequence[str],
                        num_classes: Optional[int]) -> torch.nn.Module:
    """A model for eval/predict: from ``--model`` + ``--weights``, or from an encdec file's own metadata."""
    if not weights.is_dir():
        kind = describe_non_file(weights)
        if kind == "no such file":
            raise CLIError(f"--weights {weights}: no such file or folder")
        if kind is not None:
            raise CLIError(f"--weights {weights}: is {kind}, not a checkpoint file or a save_pretrained folder")
    architecture = saved_architecture(weights)
    if architecture is None:
        if model_name is None:
            read_state_dict(weights)  # a file that is no checkpoint at all is named as such first
            raise UsageError(f"--weights {weights} does not name its architecture (a reference checkpoint); "
                             "pass --model NAME (see `encdec list`)")
        architecture = model_name
    elif model_name is not None and model_name != architecture:
        raise UsageError(f"--weights {weights} holds a {architecture}, not a {model_name}")
    kwargs = parse_model_args(architecture, pairs)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return build_model(architecture, kwargs, weights)


#: Samples of each split read before training when the whole data is not checked.
QUICK_CHECK_SAMPLES = 8


def checked_data(dataset: Any, split: str, *, full: bool, skip: bool) -> Tuple[Any, List[DataProblem]]:
    """``dataset`` after reading its samples (all of them with ``full`` or ``skip``, else a few): unusable ones
    are an error naming each file, or with ``skip`` left out and returned to be listed again at the end."""
    report = check_dataset(dataset, limit=None if full or skip else QUICK_CHECK_SAMPLES)
    left_out = [DataProblem(-1, file, reason) for file, reason in getattr(dataset, "left_out", [])]
    if full or report.problems:
        stderr(f"{split} data: {report.summary()}")
    if report.ok and not left_out:
        return dataset, []
    if not skip and report.problems:
        more = "" if full or report.checked == report.total else " (a sample of the data; --check-data reads all)"
        raise CLIError(f"{len(report.problems)} {split} samples cannot be used{more}, e.g. "
                       f"{report.problems[0].file}: {report.problems[0].reason}; fix or remove those files, or pass "
                       "--skip-corrupt to leave them out")
    stderr(f"{split} data: leaving out {len(report.problems) + len(left_out)} unusable samples (--skip-corrupt)")
    return without_problems(dataset, report), left_out + report.problems


def list_skipped(problems: Sequence[DataProblem]) -> None:
    """Print the samples ``--skip-corrupt`` left out, with the reasons (after the work, where it is seen); a file
    named by two splits' checks is listed once."""
    problems = list({(p.file, p.reason): p for p in problems}.values())
    if problems:
        stderr(f"left out {len(problems)} unusable samples (--skip-corrupt):")
        for problem in problems:
            stderr(f"  {problem.file}: {problem.reason}")


def check_size(model: torch.nn.Module, size: int, name: str) -> None:
    """A usage error when ``--size`` does not fit the model's input rule, naming the next size that does."""
    spec = input_spec_of(model)
    if spec is not None and not spec.fits(size):
        raise UsageError(f"--size {size} does not fit {name} ({spec.rule()}); try --size {spec.valid_size(size)}")
