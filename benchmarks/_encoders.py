"""The ``encoders`` group: every torchvision backbone (and, with ``--timm``-style settings, a timm sweep) built as
an encoder, run at two sizes, and compared with its upstream's own features of the same weights.

* torchvision: ``torchvision.models.feature_extraction.create_feature_extractor`` on torchvision's model, with the
  weights the encoder was loaded from (randomised BatchNorm statistics, so eval outputs depend on them).
* timm: ``timm.create_model(name, features_only=True)`` loaded with the encoder's weights, through
  :mod:`benchmarks.timm_sweep` (a worker process, a timeout per model); every timm model in full mode, a sample in
  quick and tiny mode.

A row per family: how many backbones matched (goal: all), with the failures named in the notes.

Example:
    >>> from benchmarks._config import TINY
    >>> rows = bench_encoders(TINY)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Tuple

import torch

from ._config import Settings
from ._timing import guard, skip_row, value_row

__all__ = ["bench_encoders"]

Row = Dict[str, Any]
_SIDES = (64, 96)
_TIMM_SAMPLE = ("resnet18", "efficientnet_b0", "convnext_atto", "mobilenetv3_small_050", "regnetx_002",
                "resnest14d", "densenet121", "hrnet_w18_small", "cspresnet50", "ghostnet_050")


def _randomize(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)


def _torchvision_one(name: str) -> str:
    """'' when the encoder's maps equal torchvision's own at both sizes, else what differed."""
    from torchvision.models.feature_extraction import create_feature_extractor

    from encdec.encoders import BACKBONES, create_encoder
    from encdec.encoders.torchvision_backbones import torchvision_backbone

    torch.manual_seed(0)
    reference = torchvision_backbone(name).eval()
    _randomize(reference)
    encoder = create_encoder(name).eval()
    encoder.load_state_dict({k: v for k, v in reference.state_dict().items() if k in encoder.state_dict()})
    taps = BACKBONES[name][0].split()
    extractor = create_feature_extractor(reference, return_nodes={t: t for t in taps})
    for side in _SIDES:
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            ours, theirs = encoder(x), list(extractor(x).values())
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-4, atol=1e-4):
                return f"map {i} at {side}: {tuple(a.shape)} vs {tuple(b.shape)}"
            if a.shape[1] != encoder.out_channels[i] or a.shape[-1] * encoder.strides[i] != side:
                return f"map {i} at {side}: declared channels/stride do not match {tuple(a.shape)}"
    return ""


def _sweep(group: str, label: str, names: List[str], check) -> Row:
    failures: List[Tuple[str, str]] = []
    started = time.perf_counter()
    for name in names:
        try:
            problem = check(name)
        except Exception as error:  # noqa: BLE001 - a backbone that does not build is a failure to report
            problem = f"{type(error).__name__}: {str(error)[:120]}"
        if problem:
            failures.append((name, problem))
    passed = len(names) - len(failures)
    listed = "; ".join(f"{n} ({p})" for n, p in failures[:20])
    return value_row(group, f"{label}: backbones whose features equal upstream's at {_SIDES}", passed / len(names),
                     goal=1.0, kind="fraction",
                     notes=f"{passed} of {len(names)} in {time.perf_counter() - started:.0f} s"
                           + (f"; failed: {listed}" if listed else ""))


def bench_encoders(settings: Settings) -> List[Row]:
    """Every torchvision backbone (a sample in tiny mode) and a timm sweep against their upstream features."""
    from encdec.encoders import list_encoders

    names = list_encoders()
    if settings.mode == "tiny":
        names = names[::8]
    rows = guard("encoders", "torchvision", lambda: [_sweep("encoders", "torchvision", names, _torchvision_one)])
    try:
        import timm
    except ImportError as error:
        return rows + [skip_row("encoders", "timm", f"timm is not installed ({error})")]
    from .timm_sweep import summarize, sweep

    timm_names = timm.list_models() if settings.mode == "full" else list(_TIMM_SAMPLE[:3] if settings.mode == "tiny"
                                                                        else _TIMM_SAMPLE)
    return rows + guard("encoders", "timm", lambda: [_timm_row(summarize(sweep(timm_names)))])


def _timm_row(summary: Dict[str, Any]) -> Row:
    counts, backbones = summary["counts"], summary["backbones"]
    listed = "; ".join(f"{n} ({v['status']}: {v.get('detail', '')[:80]})"
                       for n, v in list(summary["not_equal"].items())[:20])
    return value_row("encoders", "timm: features_only backbones whose features equal timm's own",
                     counts.get("equal", 0) / max(backbones, 1), goal=1.0, kind="fraction",
                     notes=f"{counts.get('equal', 0)} of {backbones} ({summary['equal_at_two_sizes']} at two sizes, "
                           f"the others at their one (fixed) input size); {counts}"
                           + (f"; not equal: {listed}" if listed else ""))
