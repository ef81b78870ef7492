"""Timing primitives: interleaved repetitions, paired ratios, goal status, the machine description.

Absolute times drift between runs and with whatever else the machine is doing, so every comparison here runs its
variants in one process, one after the other inside each repetition (alternating the order), and reports the
median of the per-repetition ratios with their interquartile range. A ratio taken from two neighbouring
measurements sees nearly the same machine load; the spread of those ratios is the noise estimate.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

__all__ = [
    "interleave",
    "paired_ratios",
    "ratio_row",
    "value_row",
    "skip_row",
    "goal_status",
    "quantiles",
    "machine_info",
    "cpu_class",
    "matmul_gflops",
    "onednn_matmul_gflops",
    "announce",
]


#: Print each row as it is made (``run_benchmarks`` turns this on for the duration of a run).
VERBOSE = False


def announce(row: Dict[str, Any]) -> Dict[str, Any]:
    """Print one finished row as a progress line (when :data:`VERBOSE`) and return it unchanged.

    Example:
        >>> row = announce({"group": "g", "name": "n", "kind": "speedup", "value": 2.0, "goal": 1.0,
        ...                 "status": "met"})  # doctest: +SKIP
                g | n                                                         x2.00  goal >= x1     met
    """
    from .report import format_goal, format_value

    if not VERBOSE:
        return row
    print(f"  {row['group']:>9} | {row['name']:<58} {format_value(row):>9}  goal {format_goal(row):<9} "
          f"{row['status']}", flush=True)
    if row["status"] in ("skipped", "error"):
        print(f"            {row.get('notes', '')}", flush=True)
    return row


def guard(group: str, name: str, fn: Callable[[], List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    """Run one benchmark; a failure becomes an ``error`` row instead of ending the whole run.

    Example:
        >>> guard("g", "n", lambda: 1 / 0)[0]["status"]  # doctest: +SKIP
        'error'
    """
    try:
        return fn()
    except Exception as error:  # noqa: BLE001 - one failing benchmark must not hide the others
        import traceback

        traceback.print_exc()
        return [announce({"group": group, "name": name, "kind": "error", "value": None, "goal": None,
                          "status": "error", "notes": f"{type(error).__name__}: {error}"})]


def interleave(
    variants: Dict[str, Callable[[], Any]],
    *,
    warmup: int = 1,
    min_reps: int = 3,
    max_reps: int = 5,
    max_seconds: float = 60.0,
    min_call_seconds: float = 0.0,
) -> Dict[str, List[float]]:
    """Time several callables in alternation: warm-up calls, then repetitions until the count or time budget ends.

    Each repetition calls every variant once, the order reversed on odd repetitions so no variant always runs
    right after the same neighbour. At least ``min_reps`` repetitions run; more run (up to ``max_reps``) while the
    timed part has taken less than ``max_seconds``. The garbage collector is paused around each timed call.

    Args:
        variants: Name -> zero-argument callable doing one unit of work (one step, one pass, ...).
        warmup: Untimed calls of each variant first (oneDNN primitive creation, allocator warm-up, lazy state).
        min_reps: Repetitions always run.
        max_reps: Repetitions at most.
        max_seconds: Time budget after which no new repetition starts (once ``min_reps`` are done).
        min_call_seconds: Calls shorter than this (timed once after warm-up) are repeated inside one timed
            measurement often enough to last about this long; the recorded time is per call.

    Returns:
        Name -> list of seconds, one per repetition, in repetition order (index ``i`` of every list is the
        same repetition, so ratios can be paired).

    Example:
        >>> times = interleave({"a": lambda: sum(range(100)), "b": lambda: sum(range(10))}, min_reps=3, max_reps=3)
        >>> sorted(times), len(times["a"])
        (['a', 'b'], 3)
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    inner = {name: 1 for name in names}
    if min_call_seconds > 0:
        for name in names:
            t0 = time.perf_counter()
            variants[name]()
            once = max(time.perf_counter() - t0, 1e-6)
            inner[name] = max(1, math.ceil(min_call_seconds / once))
    times: Dict[str, List[float]] = {name: [] for name in names}
    start = time.perf_counter()
    rep = 0
    while rep < max_reps and (rep < min_reps or time.perf_counter() - start < max_seconds):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            gc.disable()
            try:
                fn, count = variants[name], inner[name]
                t0 = time.perf_counter()
                for _ in range(count):
                    fn()
                times[name].append((time.perf_counter() - t0) / count)
            finally:
                gc.enable()
        rep += 1
    return times


def quantiles(values: Sequence[float]) -> Dict[str, float]:
    """Median and quartiles of a short sample (linear interpolation; all three equal for one value).

    Example:
        >>> quantiles([1.0, 2.0, 3.0, 4.0, 5.0])
        {'median': 3.0, 'q25': 2.0, 'q75': 4.0}
    """
    values = sorted(values)
    if len(values) == 1:
        return {"median": values[0], "q25": values[0], "q75": values[0]}
    q = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": statistics.median(values), "q25": q[0], "q75": q[2]}


def paired_ratios(baseline: Sequence[float], candidate: Sequence[float]) -> List[float]:
    """Per-repetition ``baseline / candidate`` (above 1: the candidate is faster).

    Example:
        >>> paired_ratios([2.0, 4.0], [1.0, 2.0])
        [2.0, 2.0]
    """
    return [b / c for b, c in zip(baseline, candidate)]


def goal_status(
    value: float, goal: Optional[float], high: Optional[float] = None, *, higher_is_better: bool = True
) -> str:
    """``"met"`` when ``value`` reaches ``goal``; ``"within noise"`` when only the upper quartile ``high`` does;
    ``"not met"`` otherwise; ``"reported"`` when there is no goal.

    Args:
        value: The measured median (or single value).
        goal: The target, or ``None``.
        high: The upper quartile of the per-repetition values, if any.
        higher_is_better: ``False`` for quantities that must stay at or below the goal (differences).

    Example:
        >>> goal_status(1.02, 1.0), goal_status(0.99, 1.0, high=1.01), goal_status(0.9, 1.0, high=0.95)
        ('met', 'within noise', 'not met')
        >>> goal_status(0.0, 1e-6, higher_is_better=False)
        'met'
    """
    if goal is None:
        return "reported"
    if not higher_is_better:
        return "met" if value <= goal else "not met"
    if value >= goal:
        return "met"
    if high is not None and high >= goal:
        return "within noise"
    return "not met"


def ratio_row(
    group: str,
    name: str,
    times: Dict[str, List[float]],
    baseline: str,
    candidate: str,
    *,
    goal: Optional[float] = None,
    notes: str = "",
    **extra: Any,
) -> Dict[str, Any]:
    """A result row for ``candidate`` vs ``baseline``: the median paired speed-up, its quartiles, medians in ms.

    Example:
        >>> row = ratio_row("g", "x", {"ref": [2.0, 2.2, 1.8], "new": [1.0, 1.0, 1.0]}, "ref", "new", goal=1.5)
        >>> row["value"], row["status"]
        (2.0, 'met')
    """
    ratios = paired_ratios(times[baseline], times[candidate])
    q = quantiles(ratios)
    row = {
        "group": group,
        "name": name,
        "kind": "speedup",
        "baseline": baseline,
        "candidate": candidate,
        "value": q["median"],
        "q25": q["q25"],
        "q75": q["q75"],
        "goal": goal,
        "status": goal_status(q["median"], goal, q["q75"]),
        "reps": len(ratios),
        "baseline_ms": 1e3 * statistics.median(times[baseline]),
        "candidate_ms": 1e3 * statistics.median(times[candidate]),
        "notes": notes,
    }
    row.update(extra)
    return announce(row)


def value_row(
    group: str,
    name: str,
    value: float,
    *,
    goal: Optional[float] = None,
    kind: str = "value",
    q25: Optional[float] = None,
    q75: Optional[float] = None,
    higher_is_better: bool = True,
    notes: str = "",
    **extra: Any,
) -> Dict[str, Any]:
    """A result row holding one measured quantity (a fraction, an agreement, a difference) and its goal.

    Args:
        group: Section of the report.
        name: What was measured.
        value: The value (a median when ``q25`` / ``q75`` are given).
        goal: Target value, or ``None``.
        kind: ``"fraction"``, ``"max_abs_diff"``, ``"gflops"``, ... (how the report formats it).
        q25: Lower quartile over repetitions, if any.
        q75: Upper quartile over repetitions, if any.
        higher_is_better: ``False`` when the value must stay at or below the goal.
        notes: Free text for the report.
        **extra: More fields for the JSON.

    Example:
        >>> value_row("g", "agreement", 0.999, goal=0.995, kind="fraction")["status"]
        'met'
    """
    status = goal_status(value, goal, q75 if higher_is_better else None, higher_is_better=higher_is_better)
    row = {"group": group, "name": name, "kind": kind, "value": value, "q25": q25, "q75": q75, "goal": goal,
           "higher_is_better": higher_is_better, "status": status, "notes": notes}
    row.update(extra)
    return announce(row)


def skip_row(group: str, name: str, reason: str) -> Dict[str, Any]:
    """A row for a benchmark that could not run (its target does not import, a library is missing, ...).

    Example:
        >>> skip_row("g", "x", "encdec.viz has no colorize")["status"]
        'skipped'
    """
    return announce({"group": group, "name": name, "kind": "skipped", "value": None, "goal": None,
                     "status": "skipped", "notes": reason})


def matmul_gflops(n: int = 2048) -> Callable[[], float]:
    """A zero-argument callable doing one fp32 ``n x n`` matrix product with ``torch.mm`` (MKL / OpenBLAS on x86);
    its FLOP count is ``2 n^3``.

    Example:
        >>> step = matmul_gflops(64)
        >>> step() == 2 * 64**3
        True
    """
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = torch.empty(n, n)

    def step() -> float:
        torch.mm(a, b, out=out)
        return 2.0 * n**3

    return step


def onednn_matmul_gflops(n: int = 2048) -> Optional[Callable[[], float]]:
    """The same fp32 product through oneDNN (the library PyTorch's CPU convolutions use), or ``None`` where
    PyTorch has no oneDNN. On some CPUs (AMD Zen with MKL, for one) oneDNN's fp32 GEMM is about twice as fast as
    ``torch.mm``'s, so the machine's fp32 matmul peak is the faster of the two.

    Example:
        >>> step = onednn_matmul_gflops(64)
        >>> step is None or step() == 2 * 64**3
        True
    """
    if not torch.backends.mkldnn.is_available():
        return None
    gen = torch.Generator().manual_seed(0)
    try:
        a = torch.randn(n, n, generator=gen).to_mkldnn()
        b = torch.randn(n, n, generator=gen).to_mkldnn()
        linear = torch._C._nn.mkldnn_linear
        linear(a, b)
    except Exception:  # noqa: BLE001 - a private entry point: no oneDNN matmul, fall back to torch.mm alone
        return None

    def step() -> float:
        linear(a, b)
        return 2.0 * n**3

    return step


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> List[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma")
                    return [f for f in wanted if f in flags]
    except OSError:
        pass
    return []


def _version(module: str) -> Optional[str]:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - not installed
        return None


def cpu_class(native_bf16: bool, flags: List[str], cuda: bool = False) -> str:
    """The machine class a result belongs to: native bf16 or not, and the vector extensions that matter.

    Example:
        >>> cpu_class(False, ["avx2", "avx512f", "avx512_vnni"])
        'CPU without native bf16 (AVX-512, VNNI)'
    """
    extras = [name for flag, name in (("amx_tile", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"),
                                      ("avx512_vnni", "VNNI")) if flag in flags]
    if not extras and "avx2" in flags:
        extras = ["AVX2"]
    text = f"CPU {'with' if native_bf16 else 'without'} native bf16 ({', '.join(extras) or 'no AVX2'})"
    return text + (" + CUDA" if cuda else "")


def machine_info() -> Dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, ISA, bf16 support, library versions, load.

    Example:
        >>> "torch" in machine_info()
        True
    """
    cpu = getattr(torch, "cpu", None)

    def probe(name: str) -> Optional[bool]:
        check = getattr(cpu, name, None)
        try:
            return bool(check()) if check is not None else None
        except Exception:  # noqa: BLE001
            return None

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    flags = _cpu_flags()
    native_bf16 = bool(probe("_is_avx512_bf16_supported") or probe("_is_amx_tile_supported"))
    info: Dict[str, Any] = {
        "cpu": _cpu_model(),
        "cpu_class": cpu_class(native_bf16, flags, torch.cuda.is_available()),
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags": flags,
        "avx512_bf16": probe("_is_avx512_bf16_supported"),
        "amx": probe("_is_amx_tile_supported"),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "encdec": _version("encdec"),
        "segmentation_models_pytorch": _version("segmentation-models-pytorch"),
        "torchmetrics": _version("torchmetrics"),
        "loadavg_start": list(load) if load else None,
    }
    return info
