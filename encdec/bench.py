"""``encdec bench``: run the benchmark suite of an encdec source checkout.

The suite (the ``benchmarks`` package) and the reference restatements it compares against
(``tests/reference``) live in the repository, not in the installed wheel: they need the comparison libraries of
the ``bench`` extra and are of no use at run time. This module finds the checkout -- the current directory, or
the folder holding an editable install's ``encdec`` package -- puts it on ``sys.path`` and hands over; without
one it says how to get it.

Example:
    >>> from encdec.bench import find_checkout
    >>> root = find_checkout()  # the repository root, or None outside a checkout
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Optional, Sequence

__all__ = ["find_checkout", "run_benchmarks", "main", "SuiteNotFoundError"]

_HOW = (
    "encdec bench runs the benchmark suite of an encdec source checkout (the benchmarks/ package and the "
    "reference restatements in tests/reference are not part of the installed package). Clone the repository, "
    "install it with `pip install -e '.[bench]'` and run `encdec bench` (or `python -m benchmarks.run`) from its "
    "root."
)


class SuiteNotFoundError(RuntimeError):
    """No encdec checkout with a ``benchmarks/`` package was found."""


def find_checkout(start: Optional[Path] = None) -> Optional[Path]:
    """The repository root holding ``benchmarks/run.py``: ``start`` (default: the current directory), else the
    parent of this ``encdec`` package (an editable install); ``None`` if neither has it.

    Example:
        >>> find_checkout(Path("/")) is None or True
        True
    """
    candidates = [Path.cwd() if start is None else Path(start), Path(__file__).resolve().parent.parent]
    for root in candidates:
        if (root / "benchmarks" / "run.py").is_file():
            return root.resolve()
    return None


def _suite() -> ModuleType:
    root = find_checkout()
    if root is None:
        raise SuiteNotFoundError(_HOW)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module("benchmarks.run")


def run_benchmarks(
    quick: bool = False, json_path: Optional[str] = None, markdown_path: Optional[str] = None, **kwargs: Any
) -> Dict[str, Any]:
    """Run the suite and return its result (see ``benchmarks.run.run_benchmarks``).

    Args:
        quick: Reduced sizes and repetitions (under 10 minutes on a 2-core machine).
        json_path: Write the result as JSON here.
        markdown_path: Write the markdown report here.
        **kwargs: Passed on: ``tiny=True`` (smoke-test sizes), ``only=["metrics", ...]`` (a subset of groups).

    Returns:
        The result dict: ``machine``, ``settings``, ``rows`` (one per ratio or value, with ``goal`` and
        ``status``) and ``summary``.

    Raises:
        SuiteNotFoundError: Not run from an encdec checkout.

    Example:
        >>> from encdec.bench import run_benchmarks
        >>> result = run_benchmarks(quick=True, json_path="bench.json", markdown_path="bench.md")  # doctest: +SKIP
        >>> sorted(result["summary"])  # doctest: +SKIP
        ['met', 'not met', 'within noise']
    """
    return _suite().run_benchmarks(quick, json_path, markdown_path, **kwargs)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``encdec bench [--quick | --tiny] [--json PATH] [--markdown PATH] [--only GROUPS]``.

    Returns:
        0 when every benchmark ran (whether or not it met its goal), 1 when one raised, 2 on bad arguments or
        outside a checkout.

    Example:
        >>> from encdec.bench import main
        >>> main(["--quick", "--json", "bench.json"])  # doctest: +SKIP
        0
    """
    try:
        suite = _suite()
    except SuiteNotFoundError as error:
        print(f"encdec bench: {error}", file=sys.stderr)
        return 2
    return int(suite.main(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
