"""Run the encdec benchmark suite from a source checkout: ``python -m benchmarks [--quick] [--json PATH]
[--markdown PATH]`` (or ``make bench``).

Example:
    >>> from benchmarks.run import run_benchmarks
    >>> result = run_benchmarks(quick=True, json_path=None, markdown_path=None, tiny=True,
    ...                         only=["metrics"])  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from . import _timing
from ._config import GROUPS, Settings, settings_for
from ._data import bench_colorize, bench_metrics, bench_voc
from ._encoders import bench_encoders
from ._loading import bench_loading
from ._models import bench_builders, bench_fast_path, bench_fit_overhead, bench_smp
from ._paths import bench_paths
from ._tiling import bench_tiling
from ._timing import machine_info
from .report import summarize, to_markdown

__all__ = ["run_benchmarks", "main", "BENCHMARKS"]

#: Group name -> benchmark function (``flops`` rows come with ``builders``).
BENCHMARKS: Dict[str, Callable[[Settings], List[Dict[str, Any]]]] = {
    "builders": bench_builders,
    "fast_path": bench_fast_path,
    "paths": bench_paths,
    "tiling": bench_tiling,
    "smp": bench_smp,
    "encoders": bench_encoders,
    "fit": bench_fit_overhead,
    "metrics": bench_metrics,
    "colorize": bench_colorize,
    "voc": bench_voc,
    "loading": bench_loading,
}


def _clean(value: Any) -> Any:
    """NaN / inf -> None, recursively, so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _parse_only(only: Optional[Sequence[str]]) -> List[str]:
    if not only:
        return list(GROUPS)
    wanted: List[str] = []
    for item in only:
        for name in str(item).split(","):
            name = name.strip()
            if not name:
                continue
            name = "builders" if name == "flops" else name
            if name not in BENCHMARKS:
                raise ValueError(f"unknown benchmark group {name!r}; choose from {', '.join(GROUPS)}")
            if name not in wanted:
                wanted.append(name)
    return [g for g in GROUPS if g in wanted]


def run_benchmarks(
    quick: bool = False,
    json_path: Optional[str] = None,
    markdown_path: Optional[str] = None,
    *,
    tiny: bool = False,
    only: Optional[Sequence[str]] = None,
    settings: Optional[Settings] = None,
    command: Optional[str] = None,
) -> Dict[str, Any]:
    """Run the benchmark groups, print every row as it is measured and the markdown report at the end.

    Args:
        quick: Reduced sizes and repetitions (128x128 segmentation inputs, batch 2; under 10 minutes on 2 cores).
        json_path: Write the result (machine, settings, every row) as JSON here.
        markdown_path: Write the markdown report here.
        tiny: Minimal sizes and one repetition: checks that everything runs (the numbers mean nothing).
        only: Group names to run (default all): ``builders`` (with ``flops``), ``fast_path``, ``paths``, ``tiling``,
            ``smp``, ``fit``,
            ``metrics``, ``colorize``, ``voc``; items may be comma-separated.
        settings: Explicit settings instead of the mode's defaults.
        command: The command line recorded in the report.

    Returns:
        ``{"mode", "started", "elapsed_s", "command", "machine", "settings", "groups", "rows", "summary"}``;
        every row has ``group``, ``name``, ``kind``, ``value``, ``goal``, ``status`` (``met``, ``within noise``,
        ``not met``, ``reported``, ``skipped`` or ``error``) and ``notes``.

    Raises:
        ValueError: An unknown group in ``only``.

    Example:
        >>> result = run_benchmarks(tiny=True, only=["metrics"])  # doctest: +SKIP
        >>> result["rows"][0]["group"]  # doctest: +SKIP
        'metrics'
    """
    groups = _parse_only(only)
    settings = settings or settings_for(quick, tiny)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    t0 = time.perf_counter()
    machine = machine_info()
    print(f"encdec benchmarks, {settings.mode} run: {', '.join(groups)}", flush=True)
    print(f"  {machine['cpu_class']}: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
          f"torch {machine['torch']} "
          f"({machine['torch_threads']} threads), load average {machine.get('loadavg_start')}", flush=True)
    rows: List[Dict[str, Any]] = []
    verbose, _timing.VERBOSE = _timing.VERBOSE, True
    try:
        for group in groups:
            g0 = time.perf_counter()
            print(f"[{group}]", flush=True)
            rows.extend(BENCHMARKS[group](settings))
            print(f"  ({time.perf_counter() - g0:.0f} s)", flush=True)
    finally:
        _timing.VERBOSE = verbose
    try:
        machine["loadavg_end"] = list(os.getloadavg())
    except OSError:
        pass
    result: Dict[str, Any] = {
        "mode": settings.mode,
        "started": started,
        "elapsed_s": time.perf_counter() - t0,
        "command": command or ("python -m benchmarks" + (" --quick" if quick and not tiny else "")
                               + (" --tiny" if tiny else "")),
        "machine": machine,
        "settings": settings.as_dict(),
        "groups": groups,
        "rows": rows,
        "summary": summarize(rows),
    }
    result = _clean(result)
    markdown = to_markdown(result)
    print()
    print(markdown)
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path}")
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(markdown)
        print(f"wrote {markdown_path}")
    return result


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    """The command-line options of ``python -m benchmarks``.

    Example:
        >>> build_parser().parse_args(["--quick", "--json", "out.json"]).json
        'out.json'
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark encdec against the code users would otherwise run (reference restatements, "
                    "segmentation_models_pytorch, torchmetrics, torchvision) and report ratios.",
        epilog="examples:\n"
               "  python -m benchmarks --tiny                          seconds: checks that every benchmark runs\n"
               "  python -m benchmarks --quick --markdown bench.md     under 10 minutes on 2 cores\n"
               "  python -m benchmarks --only metrics,colorize --json out.json\n"
               "  python -m benchmarks --json bench.json --markdown bench.md   the full suite (make bench)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smaller sizes and fewer repetitions (< 10 minutes)")
    mode.add_argument("--tiny", action="store_true", help="minimal sizes, one repetition: checks that it runs")
    parser.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="write the markdown report")
    parser.add_argument("--only", metavar="GROUPS", action="append",
                        help=f"comma-separated groups to run (default all): {', '.join(GROUPS)}")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry; returns 0 when every benchmark ran (met goals or not), 1 when one raised, 2 on bad
    arguments.

    Example:
        >>> main(["--tiny", "--only", "metrics"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        result = run_benchmarks(args.quick, args.json, args.markdown, tiny=args.tiny, only=args.only,
                                command=command.strip())
    except ValueError as error:
        print(f"python -m benchmarks: {error}", file=sys.stderr)
        return 2
    return 1 if result["summary"].get("error") else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
