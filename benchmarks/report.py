"""Markdown rendering of a benchmark result (the JSON is the result dict itself)."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

__all__ = ["GROUP_TITLES", "format_value", "format_goal", "summarize", "to_markdown"]

GROUP_TITLES = {
    "builders": "Every builder vs its reference restatement (same weights, fp32, contiguous, eager)",
    "flops": "Training throughput as a fraction of the fp32 matmul peak (fp32, contiguous, eager)",
    "fast_path": "Fast path (fit / predict, precision='auto', channels_last, optimize_for_inference) vs the "
                 "reference in fp32 eager",
    "smp": "unet(encoder='resnet34') vs segmentation_models_pytorch Unet('resnet34'), same weights",
    "fit": "fit vs a hand-written loop (same model, data, optimizer and precision)",
    "metrics": "SegmentationMetrics vs torchmetrics MulticlassJaccardIndex",
    "colorize": "colorize vs the reference per-pixel loop",
    "voc": "VOC reading: reference preset vs torchvision VOCSegmentation + transforms.v2",
}

GROUP_ORDER = ["builders", "flops", "fast_path", "smp", "fit", "metrics", "colorize", "voc"]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def format_value(row: Dict[str, Any], value: Optional[float] = None) -> str:
    """A row's value (or ``value``) as the report shows it: ``x2.31``, ``0.712``, ``3.0e-08``.

    Example:
        >>> format_value({"kind": "speedup", "value": 2.314})
        'x2.31'
    """
    value = row.get("value") if value is None else value
    if not _finite(value):
        return "-"
    kind = row.get("kind")
    if kind == "speedup":
        return f"x{value:.0f}" if value >= 100 else f"x{value:.2f}"
    if kind == "fraction":
        return f"{value:.3f}" if value < 0.999 or value == 1.0 else f"{value:.4f}"
    if kind == "max_abs_diff":
        return f"{value:.1e}"
    return f"{value:.4g}"


def format_goal(row: Dict[str, Any]) -> str:
    """The goal as ``>= x2.0`` / ``>= 0.995`` / ``<= 1e-06``, or ``-``.

    Example:
        >>> format_goal({"kind": "speedup", "goal": 2.0})
        '>= x2'
    """
    goal = row.get("goal")
    if goal is None:
        return "-"
    if row.get("kind") == "speedup":
        return f">= x{goal:g}"
    if row.get("higher_is_better", True) is False:
        return f"<= {goal:g}"
    return f">= {goal:g}"


def _spread(row: Dict[str, Any]) -> str:
    lo, hi = row.get("q25"), row.get("q75")
    if not (_finite(lo) and _finite(hi)):
        return ""
    return f"{format_value(row, lo)} - {format_value(row, hi)}"


def _times(row: Dict[str, Any]) -> str:
    if "baseline_ns_per_pixel" in row:
        return f"{row['baseline_ns_per_pixel']:.0f} / {row['candidate_ns_per_pixel']:.2f} ns/px"
    if _finite(row.get("baseline_ms")) and _finite(row.get("candidate_ms")):
        return f"{row['baseline_ms']:.0f} / {row['candidate_ms']:.0f} ms"
    return ""


def summarize(rows: List[Dict[str, Any]]) -> Dict[str, int]:
    """Row counts per status.

    Example:
        >>> summarize([{"status": "met"}, {"status": "met"}, {"status": "skipped"}])
        {'met': 2, 'skipped': 1}
    """
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(result: Dict[str, Any]) -> str:
    """The report: machine, settings, one table per group, the status counts.

    Example:
        >>> md = to_markdown({"mode": "tiny", "machine": {}, "settings": {}, "rows": [], "elapsed_s": 1.0})
        >>> md.splitlines()[0]
        '# encdec benchmarks (tiny run)'
    """
    machine = result.get("machine", {})
    lines = [f"# encdec benchmarks ({result.get('mode', '?')} run)", ""]
    if result.get("command"):
        lines += [f"Command: `{result['command']}`; {result.get('elapsed_s', 0):.0f} s in all, "
                  f"started {result.get('started', '?')}.", ""]
    if machine:
        load = machine.get("loadavg_start")
        load_end = machine.get("loadavg_end")
        lines += [
            f"Machine class: {machine.get('cpu_class', '?')}.",
            f"Machine: {machine.get('cpu', '?')}, {machine.get('logical_cpus', '?')} logical CPUs, "
            f"{machine.get('torch_threads', '?')} torch threads, ISA {machine.get('cpu_capability', '?')} "
            f"(flags: {', '.join(machine.get('cpu_flags') or []) or '?'}), native bf16: "
            f"{machine.get('avx512_bf16') or machine.get('amx')}, GPU: {machine.get('cuda') or 'none'}.",
            f"Software: Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}, torchvision "
            f"{machine.get('torchvision', '?')}, encdec {machine.get('encdec', '?')}, segmentation-models-pytorch "
            f"{machine.get('segmentation_models_pytorch') or 'not installed'}, torchmetrics "
            f"{machine.get('torchmetrics') or 'not installed'}.",
        ]
        if load:
            end = f", at the end {', '.join(f'{v:.1f}' for v in load_end)}" if load_end else ""
            lines.append(f"Load average (1/5/15 min) at the start {', '.join(f'{v:.1f}' for v in load)}{end} "
                         f"(other work on the machine makes absolute times drift; the ratios are paired per "
                         "repetition).")
        lines.append("")
    lines += [
        "Ratios are the median over repetitions of baseline time / candidate time, each repetition timing every "
        "variant once in alternating order after warm-up; the range is the interquartile range of those "
        "per-repetition ratios. \"within noise\": the median misses the goal but the upper quartile reaches it. "
        "Times are medians (baseline / candidate).",
        "",
    ]
    rows = result.get("rows", [])
    for group in GROUP_ORDER + sorted({r["group"] for r in rows} - set(GROUP_ORDER)):
        group_rows = [r for r in rows if r["group"] == group]
        if not group_rows:
            continue
        lines += [f"## {GROUP_TITLES.get(group, group)}", ""]
        lines += ["| Benchmark | Result | Range | Goal | Status | Times | Notes |",
                  "|---|---|---|---|---|---|---|"]
        for row in group_rows:
            result_text = format_value(row)
            lines.append(
                f"| {_escape(row['name'])} | {result_text} | {_spread(row)} | {format_goal(row)} | "
                f"{row['status']} | {_times(row)} | {_escape(row.get('notes', ''))} |"
            )
        lines.append("")
    counts = summarize(rows)
    lines.append("Status counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ".")
    return "\n".join(lines) + "\n"
