"""How long encdec takes to validate and read hostile-sized and large checkpoints (reported, no goal asserted
in tests): a safetensors header of many zero-size entries, a state dict with many extra keys, and a large torch
file read with every member's CRC-32 checked, against a plain ``torch.load``."""

from __future__ import annotations

import json
import statistics
import struct
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List

import torch

from ._config import Settings
from ._timing import skip_row, value_row

__all__ = ["bench_loading"]

GROUP = "loading"


def _seconds(call, reps: int) -> List[float]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _row(name: str, times: List[float], goal: float, notes: str) -> Dict[str, Any]:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0], times[0], times[0]]
    return value_row(GROUP, name, statistics.median(times), goal=goal, kind="seconds", q25=q[0], q75=q[2],
                     higher_is_better=False, notes=notes)


def bench_loading(settings: Settings) -> List[Dict[str, Any]]:
    """Seconds to validate and read large headers and state dicts, and the CRC share of reading a large file."""
    try:
        import encdec
        from encdec.weights import WeightsError, read_state_dict
    except ImportError as error:  # pragma: no cover
        return [skip_row(GROUP, "loading", f"encdec does not import ({error})")]
    tiny = settings.mode == "tiny"
    entries = 2_000 if tiny else 100_000
    extra_keys = 1_000 if tiny else 20_000
    big_mib = 8 if tiny else 500
    reps = 1 if tiny else 3
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        header = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(entries)}
        raw = json.dumps(header).encode()
        (root / "zero.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
        rows.append(_row(f"safetensors header of {entries:,} zero-size tensors: read_state_dict",
                         _seconds(lambda: read_state_dict(root / "zero.safetensors"), reps), 1.0,
                         "validated header, contiguity, then one view per tensor"))
        state = dict(encdec.custom_cnn().state_dict())
        state.update({f"extra.{i}": torch.zeros(1) for i in range(extra_keys)})
        torch.save(state, root / "extra.pth")

        def strict_load() -> None:
            try:
                encdec.load_weights(encdec.custom_cnn(), root / "extra.pth")
            except WeightsError:
                pass

        rows.append(_row(f"torch file with {extra_keys:,} extra keys: strict load_weights (refused)",
                         _seconds(strict_load, reps), 1.0,
                         "encdec's own reader of plain state dicts: one read, a view per tensor"))
        big = {f"w{i}": torch.randn(1024, 1024) for i in range(big_mib // 4)}
        torch.save(big, root / "big.pth")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checked = _seconds(lambda: read_state_dict(root / "big.pth"), reps)
            plain = _seconds(lambda: torch.load(root / "big.pth", weights_only=True), reps)
        rows.append(_row(f"read_state_dict of a {big_mib} MiB torch file, every member's CRC-32 checked", checked,
                         statistics.median(plain), f"torch.load of the same file: {statistics.median(plain):.2f} s"))
    return rows
