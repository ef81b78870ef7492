"""Every timm model with a ``features_only`` form, built as an encdec encoder and compared with timm's own.

For each name in ``timm.list_models()``: timm's ``create_model(name, features_only=True)`` is the reference; a
model timm cannot build that way is counted apart (it is not a backbone). encdec's ``create_encoder("timm:NAME")``
gets randomised BatchNorm statistics, the reference loads its state dict, and both run at two sizes: two and three
times the model's largest stride (64 and 96 pixels for most; two and four times for models whose patch grid pads
odd sizes), or, for a model whose timm config fixes its input size (most ViTs), at that size only. The encoder's
maps must equal timm's exactly and match the channels and strides it declares.

Models run one after another in a worker process, so that a model which hangs or takes the memory of the machine is
reported (timeout, crash) and the sweep goes on. A model whose two copies would not fit ``--max-gb`` is compared
with timm's model holding the encoder's own tensors (built on the meta device, so one copy of the weights); one
whose single copy would not fit is reported as ``too_large``, never silently dropped. A resumed sweep tries
``too_large`` models, timeouts and crashes again.

The verdicts are written as a record with the timm and torch versions and the CPU class
(``benchmarks/results/timm-sweep.json`` is the last complete one). Run from a checkout (hours for the whole family
on 2 cores; two shards use both)::

    python -m benchmarks.timm_sweep --json timm-sweep.json --smallest-first
    python -m benchmarks.timm_sweep --json shard0.json --smallest-first --shard 0/2   # and 1/2 beside it
    python -m benchmarks.timm_sweep --json timm-sweep.json --merge shard0.json shard1.json
    python -m benchmarks.timm_sweep --names resnet18 convnext_atto vit_tiny_patch16_224

Example:
    >>> result = sweep(["resnet18"], timeout=300)  # doctest: +SKIP
    >>> result["resnet18"]["status"]  # doctest: +SKIP
    'equal'
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ._encoders import _randomize

__all__ = ["RETRIED", "by_size", "check_one", "main", "read_record", "summarize", "sweep", "write_record"]

#: Verdicts that say more of the machine than of the model; a resumed sweep runs these models again.
RETRIED = ("timeout", "crashed", "too_large")


def _versions() -> Dict[str, Any]:
    import timm
    import torch

    from ._timing import machine_info

    return {"timm": timm.__version__, "torch": torch.__version__, "cpu_class": machine_info()["cpu_class"]}


def write_record(path: str, results: Dict[str, Dict[str, Any]]) -> None:
    """Write the verdicts with the timm and torch versions and the CPU class they were found on (atomically, so
    a sweep killed while writing leaves the previous record whole).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "sweep.json")
        >>> write_record(path, {"resnet18": {"status": "equal", "sides": [64, 96]}})
        >>> read_record(path)["resnet18"]["status"]
        'equal'
    """
    from encdec.atomic import atomic_write_json

    atomic_write_json({**_versions(), "results": results}, path)


def read_record(path: str) -> Dict[str, Dict[str, Any]]:
    """The verdicts of a record written by :func:`write_record`, refused when they were found with another timm.

    Raises:
        ValueError: The record is of another timm version (its verdicts say nothing of this one).

    Example:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "sweep.json")
        >>> write_record(path, {"vgg11": {"status": "equal", "sides": [64, 96]}})
        >>> list(read_record(path))
        ['vgg11']
    """
    with open(path) as handle:
        record = json.load(handle)
    import timm

    if record.get("timm") != timm.__version__:
        raise ValueError(f"{path} holds verdicts for timm {record.get('timm')}, this is timm {timm.__version__}: "
                         "pass another --json path to start a sweep for this version")
    return dict(record["results"])


def by_size(names: Sequence[str]) -> List[str]:
    """``names`` ordered by parameter count (each built on the meta device), smallest first; names timm cannot
    build ``features_only`` come first (their check is quick).

    Example:
        >>> by_size(["resnet50", "resnet18"])  # doctest: +SKIP
        ['resnet18', 'resnet50']
    """
    import timm
    import torch

    def size(name: str) -> int:
        try:
            with torch.device("meta"):
                model = timm.create_model(name, features_only=True, pretrained=False)
        except Exception:  # noqa: BLE001 - no features_only form
            return -1
        return sum(p.numel() for p in model.parameters())

    sizes = {name: size(name) for name in names}
    return sorted(names, key=lambda n: (sizes[n], n))

def _side_sets(cfg: Dict[str, Any], max_stride: int) -> List[List[int]]:
    """The sizes to run, in order of preference: a model whose config fixes its input size runs at that size
    only; others at two and three times their largest stride (64 and 96 for most); then at two and four times
    (for models whose patch grid pads odd sizes); then, when timm's own model refuses those, at its native size
    and one stride more, or at its native size alone."""
    native = int(cfg.get("input_size", (3, 224, 224))[-1])
    if cfg.get("fixed_input_size"):
        return [[native]]
    step = max(max_stride, 32)
    return [[2 * step, 3 * step], [2 * step, 4 * step], [native, native + step], [native]]


def _compare(ours: Sequence[Any], theirs: Sequence[Any], encoder: Any, side: int) -> str:
    """'' when the encoder's maps ``ours`` at ``side`` equal timm's ``theirs`` (NCHW) and match its declared channels
    and strides."""
    import torch

    if len(ours) != len(theirs) or len(ours) != len(encoder.out_channels):
        return f"{len(ours)} maps vs timm's {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if not torch.equal(a, b):
            return f"map {i} at {side} differs"
        if a.ndim != 4 or a.shape[1] != encoder.out_channels[i]:
            return f"map {i} is {tuple(a.shape)}, declared {encoder.out_channels[i]} channels"
        # Unpadded convolutions (Inception) lose a few pixels: the declared stride is the nominal reduction.
        if abs(a.shape[-1] * encoder.strides[i] - side) > 0.2 * side:
            return f"map {i} is {tuple(a.shape)} at {side}, declared stride {encoder.strides[i]}"
    return ""


def _reference_maps(reference: Any, x: Any) -> List[Any]:
    """timm's own maps of ``x``, NCHW (timm's ``output_fmt`` is a str enum; NHWC models are permuted)."""
    maps = list(reference(x))
    if getattr(reference, "output_fmt", "NCHW") == "NHWC":
        maps = [m.permute(0, 3, 1, 2) for m in maps]
    return maps


def check_one(name: str, max_gb: float) -> Dict[str, Any]:
    """Compare ``create_encoder("timm:" + name)`` with timm's own ``features_only`` model; a JSON-able verdict.

    A model whose two fp32 copies exceed ``max_gb`` but one fits is compared with timm's model built on the meta
    device and given the encoder's own tensors (``"shared_weights": true`` in the verdict): timm's forward on the
    same weights, without a second copy of them.

    Example:
        >>> check_one("resnet18", max_gb=4.0)["status"]  # doctest: +SKIP
        'equal'
    """
    import timm
    import torch

    from encdec.encoders import create_encoder

    try:
        with torch.device("meta"):
            probe = timm.create_model(name, features_only=True, pretrained=False)
    except Exception as error:  # noqa: BLE001 - a model without a features_only form is not a backbone
        return {"status": "no_features_only", "detail": f"{type(error).__name__}: {str(error)[:160]}"}
    params = sum(p.numel() for p in probe.parameters())
    cfg = dict(getattr(probe, "pretrained_cfg", {}) or {})
    del probe
    copy_gb = 4 * params / 2**30
    if copy_gb > max_gb:
        return {"status": "too_large", "params": params, "detail": f"one fp32 copy exceeds {max_gb:g} GB"}
    shared = 2 * copy_gb > max_gb
    torch.manual_seed(0)
    try:
        encoder = create_encoder(f"timm:{name}").eval()
    except Exception as error:  # noqa: BLE001 - reported as the failure it is
        return {"status": "failed", "params": params, "detail": f"build: {type(error).__name__}: {str(error)[:160]}"}
    _randomize(encoder)
    try:
        reference = _reference(timm, name, encoder.model, shared=shared,
                               dynamic_img_size=getattr(encoder, "dynamic_img_size", False))
    except ValueError as error:
        return {"status": "failed", "params": params, "detail": f"reference: {error}"}
    refused, notes = "", []
    for sides in _side_sets(cfg, max(encoder.strides)):
        outcome, detail = _run_sides(encoder, reference, sides)
        if outcome == "equal":
            noted = {"note": "; ".join(notes)} if notes else {}
            return {"status": "equal", "params": params, "sides": sides, **noted,
                    **({"shared_weights": True} if shared else {})}
        if outcome == "refused":
            refused = detail
        elif outcome == "stride":  # e.g. MobileViT-v2 pads odd patch grids: try sizes its grid divides
            notes.append(detail)
        else:
            return {"status": "failed", "params": params, "sides": sides, "detail": detail}
    if notes:
        return {"status": "failed", "params": params, "detail": "; ".join(notes)}
    return {"status": "reference_failed", "params": params, "detail": refused}


def _reference(timm: Any, name: str, source: Any, *, shared: bool, dynamic_img_size: bool = False) -> Any:
    """timm's own ``features_only`` model of ``name`` holding ``source``'s weights: loaded into a model of its own,
    or, when ``shared``, built on the meta device and given ``source``'s tensors themselves (buffers kept out of
    the state dict too, each checked by name and shape). Built with ``dynamic_img_size`` as the encoder was."""
    import itertools

    import torch

    options = {"dynamic_img_size": True} if dynamic_img_size else {}
    if not shared:
        reference = timm.create_model(name, features_only=True, pretrained=False, **options).eval()
        reference.load_state_dict(source.state_dict())
        return reference
    with torch.device("meta"):
        reference = timm.create_model(name, features_only=True, pretrained=False, **options).eval()
    reference.load_state_dict(source.state_dict(), assign=True)
    buffers = dict(source.named_buffers())
    for key, buffer in list(reference.named_buffers()):
        if buffer.is_meta:  # a buffer outside the state dict (``persistent=False``)
            if key not in buffers or buffers[key].shape != buffer.shape:
                raise ValueError(f"timm's model has a buffer {key} {tuple(buffer.shape)} the encoder does not match")
            owner, _, attribute = key.rpartition(".")
            reference.get_submodule(owner)._buffers[attribute] = buffers[key]
    left = [k for k, t in itertools.chain(reference.named_parameters(), reference.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"timm's model kept tensors the encoder does not have: {', '.join(left[:3])}")
    return reference


def _run_sides(encoder: Any, reference: Any, sides: Sequence[int]) -> Tuple[str, str]:
    """Run both models at each side: ("equal", ""), ("refused", why) when timm's own model refuses a side,
    ("stride", what) when equal maps do not have the declared strides, or ("failed", what)."""
    import torch

    for side in sides:
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            try:
                theirs = _reference_maps(reference, x)
            except Exception as error:  # noqa: BLE001 - a size timm's own model refuses says nothing of ours
                return "refused", f"timm at {side}: {type(error).__name__}: {str(error)[:160]}"
            problem = _compare(list(encoder(x)), theirs, encoder, side)
        if problem:
            return ("stride" if "declared stride" in problem else "failed"), problem
    return "equal", ""


def _worker(max_gb: float) -> None:
    import warnings

    warnings.simplefilter("ignore")
    for line in sys.stdin:
        name = line.strip()
        started = time.perf_counter()
        try:
            verdict = check_one(name, max_gb)
        except Exception as error:  # noqa: BLE001 - one model must not end the sweep
            verdict = {"status": "failed", "detail": f"{type(error).__name__}: {str(error)[:160]}"}
        verdict["seconds"] = round(time.perf_counter() - started, 2)
        print(json.dumps({"name": name, **verdict}), flush=True)


class _Worker:
    def __init__(self, max_gb: float, threads: int) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.timm_sweep", "--worker", "--max-gb", str(max_gb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=root, env=env)

    def ask(self, name: str, timeout: float) -> Optional[Dict[str, Any]]:
        """The worker's verdict on ``name``, or None when it did not answer in time (or died)."""
        try:
            self.process.stdin.write(name + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            return None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        return json.loads(line) if line else None

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


def sweep(names: Sequence[str], *, timeout: float = 600.0, max_gb: float = 12.0, threads: int = 1,
          progress: bool = False, done: Optional[Dict[str, Dict[str, Any]]] = None,
          checkpoint: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Check every name in a worker process; a name it does not answer within ``timeout`` s is ``timeout``, one
    during which it dies is ``crashed``. Names already in ``done`` are not run again, unless their verdict
    depends on the machine (``RETRIED``); ``checkpoint`` (a JSON path) is rewritten after every model, atomically
    and with the versions and CPU class (:func:`write_record`), so an interrupted sweep resumes.

    Example:
        >>> sweep(["resnet18", "convnext_atto"], timeout=300)["convnext_atto"]["status"]  # doctest: +SKIP
        'equal'
    """
    results: Dict[str, Dict[str, Any]] = dict(done or {})
    worker: Optional[_Worker] = None
    try:
        for name in names:
            if name in results and results[name]["status"] not in RETRIED:
                continue
            worker = worker or _Worker(max_gb, threads)
            verdict = worker.ask(name, timeout)
            if verdict is None:
                died = worker.process.poll() is not None
                verdict = {"name": name, "status": "crashed" if died else "timeout", "seconds": timeout}
                worker.close()
                worker = None
            results[name] = {k: v for k, v in verdict.items() if k != "name"}
            if progress:
                print(f"{len(results):5d} {name:50s} {results[name]['status']:17s} {results[name].get('seconds')}",
                      flush=True)
            if checkpoint:
                write_record(checkpoint, results)
    finally:
        if worker is not None:
            worker.close()
    return results


def summarize(results: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Counts per status, and the names of every model that is not ``equal``.

    Example:
        >>> summarize({"a": {"status": "equal", "sides": [64, 96]}, "b": {"status": "failed"}})["counts"]
        {'equal': 1, 'failed': 1}
    """
    counts: Dict[str, int] = {}
    for verdict in results.values():
        counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
    backbones = len(results) - counts.get("no_features_only", 0)
    two_sizes = sum(1 for v in results.values() if v["status"] == "equal" and len(v.get("sides", ())) == 2)
    return {"counts": dict(sorted(counts.items())), "backbones": backbones, "equal_at_two_sizes": two_sizes,
            "not_equal": {n: v for n, v in sorted(results.items()) if v["status"] not in ("equal", "no_features_only")}}


def _shard(text: str) -> Tuple[int, int]:
    index, _, count = text.partition("/")
    if not (index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise argparse.ArgumentTypeError(f"--shard takes I/N with 0 <= I < N, such as 0/2; got {text!r}")
    return int(index), int(count)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line (see the module docstring); 0 unless a model failed or crashed its worker.

    Example:
        >>> main(["--names", "resnet18"])  # doctest: +SKIP
        0
    """
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timm_sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="*", help="timm names to check (default: timm.list_models())")
    parser.add_argument("--json", help="write (and resume from) the per-model verdicts here")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per model (default 600)")
    parser.add_argument("--max-gb", type=float, default=12.0, help="memory for the two copies of a model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the worker")
    parser.add_argument("--smallest-first", action="store_true",
                        help="order the models not yet checked by parameter count (a few minutes to size them)")
    parser.add_argument("--shard", default="0/1", type=_shard,
                        help="I/N: check every N-th model from the I-th (parallel sweeps, one --json each)")
    parser.add_argument("--merge", nargs="+", metavar="RECORD",
                        help="write the union of these records (of the same timm) to --json, and check nothing")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.max_gb)
        return 0
    import timm

    names = args.names or timm.list_models()
    done = read_record(args.json) if args.json and os.path.exists(args.json) else {}
    if args.merge:
        if not args.json:
            parser.error("--merge needs --json, the record to write")
        for path in args.merge:
            done.update(read_record(path))
        write_record(args.json, done)
        print(json.dumps({k: v for k, v in summarize(done).items() if k != "not_equal"}))
        return 0
    index, count = args.shard
    pending = [n for n in names if n not in done or done[n]["status"] in RETRIED]
    pending = (by_size(pending) if args.smallest_first else pending)[index::count]
    results = sweep(pending, timeout=args.timeout, max_gb=args.max_gb, threads=args.threads, progress=True,
                    done=done, checkpoint=args.json)
    summary = summarize({n: results[n] for n in names if n in results})
    print(f"{len(pending)} checked now, {len(done)} taken from {args.json}" if done else f"{len(pending)} checked")
    print(json.dumps({k: v for k, v in summary.items() if k != "not_equal"}))
    for name, verdict in summary["not_equal"].items():
        print(f"{name}: {verdict['status']} {verdict.get('detail', '')}")
    return 0 if not any(v["status"] in ("failed", "crashed") for v in summary["not_equal"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
