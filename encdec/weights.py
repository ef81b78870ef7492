"""Reading, validating, converting and writing model weights.

Every checkpoint goes through the same steps:

1. ``read_state_dict``: detect the format from the file's bytes (safetensors, torch zip, legacy torch pickle),
   read it without ever running pickled code (``torch.load(weights_only=True)``), unwrap training containers
   (``state_dict``, ``model``, ``net``, ...) and strip ``module.`` / ``_orig_mod.`` / Lightning ``model.``
   prefixes.
2. The model's ``checkpoint_filter`` (registered with its builder) renames reference keys to encdec's own.
3. ``load_state_dict``: check every key and shape first, then load all or nothing.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import stat
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = [
    "WeightsError",
    "LoadReport",
    "read_state_dict",
    "read_metadata",
    "remap_keys",
    "load_state_dict",
    "load_weights",
    "save_weights",
    "save_pretrained",
    "from_pretrained",
]

PathLike = Union[str, os.PathLike]
StateDict = Dict[str, Tensor]
Rule = Tuple[str, Union[str, Callable[[Any], str]]]

_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "network", "weights")
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema")
_STRIPPED_PREFIXES = ("module.", "_orig_mod.")
_MAX_NESTING = 4
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
_SHOWN = 8
_SHOWN_CHARS = 120  # longest key or value quoted in a message; hostile files carry megabyte-long names

# Bytes per element of the legacy typed storages, to check a legacy file's storage sizes against its length.
_LEGACY_STORAGE_BYTES = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
    "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
    "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "QInt32Storage": 4,
}

_SAFETENSORS_DTYPES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}


class WeightsError(ValueError):
    """A checkpoint that cannot be read safely or does not fit the model; the message says what and why."""


@dataclass
class LoadReport:
    """What ``load_weights`` / ``load_state_dict`` did.

    Attributes:
        loaded: Keys copied into the model.
        missing: Model keys the checkpoint lacks (left as they were; only with ``strict=False``).
        unexpected: Checkpoint keys the model lacks (ignored; only with ``strict=False``).
        mismatched: ``(key, checkpoint_shape, model_shape)`` for keys skipped for their shape
            (only with ``strict=False``).
        dropped: Reference keys removed on purpose by the model's key map (e.g. weights the reference
            defines but never uses).
    """

    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """True when every model key was loaded and nothing was skipped."""
        return not (self.missing or self.unexpected or self.mismatched)


# ----------------------------------------------------------------------------------------------- reading


def read_state_dict(path: PathLike, *, use_ema: bool = False) -> StateDict:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict, safely, whatever its container.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.ckpt`` or ``.bin`` file; the format is detected from the
            bytes, not the extension.
        use_ema: Prefer an EMA copy of the weights (``state_dict_ema``) when the file has one.

    Raises:
        WeightsError: The file is missing, unreadable, not a checkpoint, asks to run pickled code, or holds
            something other than tensors.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.ckpt"
        >>> torch.save({"state_dict": {"module.fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
        >>> list(read_state_dict(path))
        ['fc.weight']
    """
    raw = _read_file(Path(path))
    state = _unwrap(raw, str(path), use_ema)
    _check_tensors(state, str(path))
    return _strip_prefixes(state)


def read_metadata(path: PathLike) -> Dict[str, str]:
    """The string metadata of a safetensors file (empty for other formats).

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/m.safetensors"
        >>> encdec.save_weights(encdec.custom_cnn(), path)
        >>> read_metadata(path)["architecture"]
        'custom_cnn'
    """
    path = Path(path)
    with _open(path) as f:
        head = f.read(8)
        if len(head) < 8 or not _looks_like_safetensors(path, head):
            return {}
        header = _safetensors_header(path, f, head)
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def _open(path: Path):
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise WeightsError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise WeightsError(f"{path}: is a directory; for a save_pretrained folder use encdec.from_pretrained") from None
    except OSError as e:
        raise WeightsError(f"{path}: cannot be opened ({e.strerror})") from None


def _read_file(path: Path) -> Any:
    with _open(path) as f:
        head = f.read(8)
        if _looks_like_safetensors(path, head):
            _safetensors_header(path, f, head)
            return _load_safetensors(path)
    if path.suffix == ".safetensors" and len(head) < 8:
        raise WeightsError(
            f"{path}: truncated safetensors file: {len(head)} bytes, shorter than the 8-byte header length field"
        )
    if head.startswith(b"PK\x03\x04"):
        _check_zip(path)
        return _torch_load(path)
    if head[:1] == b"\x80":
        _check_legacy_storages(path)
        return _torch_load(path)
    shown = head[:8].hex(" ") if head else "an empty file"
    raise WeightsError(
        f"{path}: not a checkpoint format encdec reads (first bytes: {shown}). Supported: safetensors, "
        "torch.save files (zip or legacy pickle: .pth/.pt/.ckpt/.bin)."
    )


def _looks_like_safetensors(path: Path, head: bytes) -> bool:
    if len(head) < 8:
        return False
    (n,) = struct.unpack("<Q", head)
    if n == 0 or n > _MAX_SAFETENSORS_HEADER:
        return path.suffix == ".safetensors"
    with open(path, "rb") as f:
        f.seek(8)
        return f.read(1) == b"{" or path.suffix == ".safetensors"


def _safetensors_header(path: Path, f, head: bytes) -> Dict[str, Any]:
    """Validate a safetensors header against the file before any tensor memory is allocated."""
    size = os.fstat(f.fileno()).st_size
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_SAFETENSORS_HEADER or n > size - 8:
        raise WeightsError(
            f"{path}: corrupt safetensors file: header length {n} bytes exceeds the file ({size} bytes) "
            f"or the {_MAX_SAFETENSORS_HEADER}-byte limit"
        )
    f.seek(8)
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except RecursionError:
        raise WeightsError(f"{path}: corrupt safetensors file: header JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers of thousands of digits
        raise WeightsError(
            f"{path}: corrupt safetensors file: header is not valid JSON ({_short(str(e))})"
        ) from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: corrupt safetensors file: header is a {type(header).__name__}, not an object")
    data_len = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if info is not None and not isinstance(info, dict):
                raise WeightsError(f"{path}: corrupt safetensors file: __metadata__ is not an object")
            continue
        _check_tensor_entry(path, key, info, data_len)
    return header


def _check_tensor_entry(path: Path, key: str, info: Any, data_len: int) -> None:
    def bad(why: str) -> WeightsError:
        return WeightsError(f"{path}: corrupt safetensors file: tensor {_short(repr(key))} {_short(why, 300)}")

    if not isinstance(info, dict):
        raise bad("has no description object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _SAFETENSORS_DTYPES:
        raise bad(f"has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise bad(f"has an invalid shape {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise bad(f"has invalid data_offsets {offsets!r}")
    start, end = offsets
    if not 0 <= start <= end <= data_len:
        raise bad(f"has data_offsets {offsets} outside the {data_len}-byte data section")
    if end - start != math.prod(shape) * _SAFETENSORS_DTYPES[dtype]:
        raise bad(f"has {end - start} bytes of data for shape {shape} of {dtype}")


def _load_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, RuntimeError, ValueError, OSError, MemoryError) as e:
        raise WeightsError(f"{path}: corrupt safetensors file ({_short(str(e), 300)})") from None
    except BaseException as e:
        # A Rust panic inside safetensors surfaces as pyo3's PanicException, a BaseException.
        if type(e).__name__ != "PanicException":
            raise
        raise WeightsError(f"{path}: corrupt safetensors file (the reader failed: {_short(str(e), 300)})") from None


def _check_zip(path: Path) -> None:
    """Refuse zip archives that are not torch checkpoints, or whose members claim more bytes than they can hold.

    torch's reader allocates each record's declared uncompressed size before reading it, so a member that
    claims terabytes must be refused here, before ``torch.load`` sees it.
    """
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except Exception as e:  # BadZipFile, OSError, ValueError, EOFError, NotImplementedError, struct.error, ...
        raise WeightsError(f"{path}: corrupt torch zip checkpoint ({type(e).__name__}: {_short(str(e))})") from None
    names = [i.filename for i in infos]
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        raise WeightsError(
            f"{path}: a zip archive without a data.pkl record, so not a torch.save checkpoint "
            f"(members: {_cap([_short(n) for n in names], 5) or 'none'})"
        )
    for info in infos:
        # torch writes stored (uncompressed) records; deflate cannot expand data more than about 1032 times.
        limit = size if info.compress_type == zipfile.ZIP_STORED else 1032 * info.compress_size + 1024
        if info.file_size > limit or info.compress_size > size:
            raise WeightsError(
                f"{path}: corrupt torch zip checkpoint: member {_short(repr(info.filename))} claims "
                f"{info.file_size} bytes ({info.compress_size} stored) in a {size}-byte file; refused before "
                "allocating"
            )


class _Stub:
    """Stands in for every global a pickle names during ``_check_legacy_storages``: nothing real is built or run."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
        return _Stub(self.name + "()")

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _StorageScanner(pickle.Unpickler):
    """An unpickler that resolves every global to a ``_Stub`` and records the storages a legacy file declares."""

    def __init__(self, f: Any) -> None:
        super().__init__(f, encoding="latin1")
        self.claims: Dict[Any, int] = {}

    def find_class(self, module: str, name: str) -> Any:
        return _Stub(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] in ("storage", b"storage"):
            storage_type, key, numel = pid[1], pid[2], pid[4]
            if isinstance(numel, int) and not isinstance(numel, bool) and _is_hashable(key):
                kind = storage_type.name.rsplit(".", 1)[-1] if isinstance(storage_type, _Stub) else ""
                self.claims.setdefault(key, numel * _LEGACY_STORAGE_BYTES.get(kind, 1))
        return _Stub("storage")


def _is_hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _check_legacy_storages(path: Path) -> None:
    """Refuse a legacy (non-zip) torch file whose storages claim more bytes than the file holds.

    The legacy loader allocates every storage at the size its pickle declares before reading the data, so a
    few bytes can ask for terabytes. This scan resolves no globals and runs no code; anything it cannot parse
    is left to ``torch.load``, which refuses it with its own message.
    """
    size = path.stat().st_size
    scanner = None
    try:
        with open(path, "rb") as f:
            for _ in range(3):  # magic number, protocol version, system info
                _StorageScanner(f).load()
            scanner = _StorageScanner(f)
            scanner.load()
    except Exception:  # a damaged pickle: torch.load reports it; storages declared before the damage still count
        pass
    if scanner is None:
        return
    total = 0
    for key, nbytes in scanner.claims.items():
        total += max(nbytes, 0)
        if nbytes > size or total > size:
            raise WeightsError(
                f"{path}: corrupt legacy torch checkpoint: storage {_short(repr(key))} claims {nbytes} bytes "
                f"({total} in all so far) but the file has {size}; refused before allocating"
            )


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy files warn about TypedStorage; the result is checked below
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line or "nsupported" in line), lines[-1] if lines else "")
        if "GLOBAL" in detail or "global" in detail:
            what = "the file asks the unpickler to run code or build objects"
        else:
            what = "the file is damaged or uses pickle instructions a safe loader does not run"
        raise WeightsError(
            f"{path}: refused: {what} ({_short(detail, 300)}). "
            "encdec reads checkpoints with torch.load(weights_only=True) and never runs pickled code. "
            "A whole pickled model must be re-saved as model.state_dict(); if you trust the file, load it "
            "yourself and pass the state dict to encdec.load_state_dict."
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, KeyError, MemoryError, ... for damaged files
        raise WeightsError(
            f"{path}: unreadable torch checkpoint ({type(e).__name__}: {_short(str(e), 300)})"
        ) from None


def _unwrap(obj: Any, source: str, use_ema: bool) -> StateDict:
    keys = (_EMA_KEYS + _CONTAINER_KEYS) if use_ema else (_CONTAINER_KEYS + _EMA_KEYS)
    for _ in range(_MAX_NESTING + 1):
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{source}: holds a {type(obj).__name__}, not a dict of tensors")
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            bad = [k for k in obj if not isinstance(k, str)]
            if bad:
                raise WeightsError(f"{source}: state dict has non-string keys, e.g. {_short(repr(bad[0]))}")
            return dict(obj)
        inner = next((k for k in keys if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            tensors = [k for k, v in obj.items() if isinstance(v, Tensor)]
            others = [f"{_short(repr(k))} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, Tensor)]
            if not obj:
                raise WeightsError(f"{source}: holds an empty dict, no weights")
            if tensors:
                raise WeightsError(f"{source}: state dict has non-tensor values: {_cap(others)}")
            raise WeightsError(
                f"{source}: found no state dict; top-level keys are {_cap([_short(repr(k)) for k in obj])}. "
                f"encdec looks under {', '.join(keys)}"
            )
        obj = obj[inner]
    raise WeightsError(f"{source}: containers nested deeper than {_MAX_NESTING} levels")


def _check_tensors(state: Mapping[str, Any], source: str) -> None:
    """Refuse values that are not dense tensors holding data: sparse, nested, meta-device or non-tensor values."""
    for key, value in state.items():
        where = f"{source}: entry {_short(repr(key))}"
        if not isinstance(value, Tensor):
            raise WeightsError(f"{where} is a {type(value).__name__}, not a tensor")
        if value.is_nested:
            raise WeightsError(f"{where} is a nested tensor; checkpoints hold dense (strided) tensors")
        if value.layout != torch.strided:
            raise WeightsError(f"{where} has layout {value.layout}; checkpoints hold dense (strided) tensors")
        if value.device.type == "meta":
            raise WeightsError(f"{where} is on the meta device and holds no values")


def _strip_prefixes(state: StateDict) -> StateDict:
    def strip(key: str) -> str:
        # Advance an index instead of slicing repeatedly: a hostile key of a million "module." prefixes would
        # otherwise cost quadratic time.
        start, changed = 0, True
        while changed:
            changed = False
            for prefix in _STRIPPED_PREFIXES:
                if key.startswith(prefix, start):
                    start, changed = start + len(prefix), True
        return key[start:]

    state = {strip(k): v for k, v in state.items()}
    if state and all(k.startswith("model.") for k in state):  # Lightning modules hold the net as self.model
        state = {k[len("model."):]: v for k, v in state.items()}
    return state


# ----------------------------------------------------------------------------------------------- key maps


def remap_keys(state: Mapping[str, Tensor], rules: Sequence[Rule], drop: Iterable[str] = ()) -> StateDict:
    """Rename keys by the first matching regular-expression rule, dropping keys that match ``drop``.

    A rule is ``(pattern, replacement)``; the replacement is a template string or a function of the match.
    Keys no rule matches are kept as they are, so already-native state dicts pass through unchanged.

    Example:
        >>> sd = {"convUp_fin.weight": torch.zeros(1), "unused.bias": torch.zeros(1)}
        >>> list(remap_keys(sd, [(r"^convUp_fin\\.", "head.")], drop=[r"^unused\\."]))
        ['head.weight']
    """
    import re

    compiled = [(re.compile(p), r) for p, r in rules]
    dropped = [re.compile(p) for p in drop]
    out: StateDict = {}
    for key, value in state.items():
        if any(d.search(key) for d in dropped):
            continue
        for pattern, repl in compiled:
            new, n = pattern.subn(repl, key, count=1)
            if n:
                key = new
                break
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------------- loading


def load_weights(model: nn.Module, path: PathLike, *, strict: bool = True, use_ema: bool = False) -> LoadReport:
    """Load a checkpoint of any supported format into ``model``, converting reference layouts.

    Args:
        model: A model from an encdec builder (its registered key map converts reference checkpoints) or any
            ``nn.Module`` whose own state-dict names the file uses.
        path: The checkpoint file.
        strict: With ``True`` (default), any missing, unexpected or mis-shaped key raises ``WeightsError`` and
            nothing is loaded. With ``False``, what fits is loaded and the rest is reported (and warned about).
        use_ema: Prefer the file's EMA weights when it has them.

    Returns:
        A ``LoadReport``.

    Raises:
        WeightsError: Unreadable, unsafe or non-fitting checkpoints; the message lists the keys at fault with
            both shapes and a hint such as ``num_classes=10``.

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/cnn.ckpt"
        >>> torch.save(encdec.custom_cnn(num_classes=3).state_dict(), path)
        >>> encdec.load_weights(encdec.custom_cnn(num_classes=3), path).complete
        True
    """
    original = read_state_dict(path, use_ema=use_ema)
    state = _apply_checkpoint_filter(model, original)
    # A key absent after filtering was either renamed or dropped; it was dropped when it maps to nothing alone.
    dropped = sorted(
        key for key in set(original) - set(state) if not _apply_checkpoint_filter(model, {key: original[key]})
    )
    report = load_state_dict(model, state, strict=strict, source=str(path))
    report.dropped = dropped
    return report


def _apply_checkpoint_filter(model: nn.Module, state: StateDict) -> StateDict:
    config = getattr(model, "encdec_config", None)
    if not config:
        return state
    from ._registry import model_info

    fn = model_info(model).checkpoint_filter
    return fn(state, model) if fn is not None else state


def load_state_dict(
    model: nn.Module, state: Mapping[str, Tensor], *, strict: bool = True, source: str = "state dict"
) -> LoadReport:
    """Check a state dict against ``model`` completely, then load it: all of it, or (``strict=False``) what fits.

    Besides names and shapes it refuses non-floating values for floating parameters and non-finite values.
    BatchNorm ``num_batches_tracked`` counters absent from old checkpoints are not required.

    Example:
        >>> layer = nn.Linear(2, 3)
        >>> load_state_dict(layer, {"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}).loaded
        ['weight', 'bias']
    """
    own = model.state_dict()
    if not isinstance(state, Mapping):
        raise WeightsError(f"{source}: is a {type(state).__name__}, not a mapping of names to tensors")
    state = dict(state)
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise WeightsError(f"{source}: state dict has non-string keys, e.g. {_short(repr(bad_keys[0]))}")
    _check_tensors(state, source)
    for key in own:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key].clone()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                  if k in state and state[k].shape != own[k].shape]
    bad_dtype = [f"{k} ({state[k].dtype} for {own[k].dtype})" for k in own
                 if k in state and own[k].is_floating_point() and not state[k].is_floating_point()]
    nonfinite = [k for k in own if k in state and state[k].is_floating_point() and state[k].numel()
                 and not _all_finite(state[k], own[k].dtype)]
    if bad_dtype or nonfinite:
        parts = []
        if bad_dtype:
            parts.append(f"non-floating values for floating parameters: {_cap(bad_dtype)}")
        if nonfinite:
            parts.append(f"NaN or infinite values in: {_cap(nonfinite)}")
        raise WeightsError(f"{source}: " + "; ".join(parts))
    if strict and (missing or unexpected or mismatched):
        raise WeightsError(_mismatch_message(model, source, missing, unexpected, mismatched))
    skip = {k for k, _, _ in mismatched}
    loadable = {k: v for k, v in state.items() if k in own and k not in skip}
    model.load_state_dict(loadable, strict=strict)
    report = LoadReport(loaded=list(loadable), missing=missing, unexpected=unexpected, mismatched=mismatched)
    if not report.complete:
        warnings.warn(
            f"{source}: loaded {len(loadable)} of {len(own)} entries; "
            + _mismatch_message(model, source, missing, unexpected, mismatched, header=False),
            stacklevel=2,
        )
    return report


def _all_finite(value: Tensor, target: torch.dtype) -> bool:
    """Whether ``value`` stays finite once copied into a ``target`` tensor (float64 1e300 becomes inf in float32)."""
    if target.is_floating_point and value.dtype != target:
        value = value.to(target)
    if value.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        value = value.float()  # isfinite has no kernel for the float8 types
    return bool(torch.isfinite(value).all())


def _short(text: str, limit: int = _SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with its full length when cut."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _cap(items: Sequence[str], shown: int = _SHOWN) -> str:
    head = ", ".join(_short(item, 300) for item in items[:shown])
    return head + (f" ... and {len(items) - shown} more" if len(items) > shown else "")


def _mismatch_message(model, source, missing, unexpected, mismatched, header: bool = True) -> str:
    name = (getattr(model, "encdec_config", None) or {}).get("architecture", type(model).__name__)
    lines = [f"{source} does not fit {name}:"] if header else []
    if mismatched:
        shapes = [f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in mismatched]
        lines.append(f"  {len(mismatched)} mis-shaped: {_cap(shapes)}")
    if missing:
        lines.append(f"  {len(missing)} missing from the checkpoint: {_cap(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected in the checkpoint: {_cap(unexpected)}")
    hint = _hint(model, mismatched, missing, unexpected)
    if hint:
        lines.append(f"  Hint: {hint}")
    return "\n".join(lines)


def _hint(model, mismatched, missing, unexpected) -> str:
    hints = []
    num_classes = getattr(model, "num_classes", None)
    in_channels = getattr(model, "in_channels", None)
    for _key, ckpt, own in mismatched:
        if len(ckpt) != len(own):
            continue
        diff = [i for i in range(len(own)) if ckpt[i] != own[i]]
        if len(diff) != 1:
            continue
        i = diff[0]
        if i == 0 and own[0] == num_classes and f"num_classes={ckpt[0]}" not in " ".join(hints):
            hints.append(f"the checkpoint has {ckpt[0]} outputs: pass num_classes={ckpt[0]}?")
        elif i == 1 and own[1] == in_channels and len(own) == 4 and f"in_channels={ckpt[1]}" not in " ".join(hints):
            hints.append(f"the checkpoint takes {ckpt[1]} input channels: pass in_channels={ckpt[1]}?")
    if not hints and missing and unexpected and len(unexpected) >= len(missing) // 2:
        hints.append("most names differ: is this a checkpoint of another architecture? "
                     "encdec.list_models() shows the builders; `encdec info NAME` lists what each loads")
    return " ".join(hints)


# ----------------------------------------------------------------------------------------------- writing


def _metadata(model: nn.Module, extra: Mapping[str, Any]) -> Dict[str, str]:
    from . import __version__

    config = getattr(model, "encdec_config", None) or {}
    meta = {"format": "pt", "encdec_version": __version__}
    if config:
        meta["architecture"] = config["architecture"]
        meta["kwargs"] = json.dumps(config["kwargs"], sort_keys=True)
    for key in ("class_names", "mean", "std"):
        value = extra.get(key, config.get(key))
        if value is not None:
            meta[key] = json.dumps(list(value))
    for key, value in extra.items():
        if key not in ("class_names", "mean", "std") and value is not None:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


TEMP_SUFFIX = ".tmp"  # the private folder of an unfinished atomic_write: `.<name>.<random>.tmp`


def atomic_write(path: PathLike, write: Callable[[str], None]) -> None:
    """Write a file through ``write(tmp_path)`` into a private temporary folder, fsync it, then rename it into place.

    A crash at any moment leaves either the old complete file or the new complete one, never a torn file.
    ``tmp_path`` has ``path``'s file name inside a fresh ``.<name>.<random>.tmp`` folder next to ``path``, so
    writers that make side files of their own (safetensors writes a ``.tmpXXXXXX`` and renames it) keep them
    in that folder, which is removed afterwards. A writer killed mid-write leaves only such a folder behind;
    nothing reads it, and it can be deleted. The new file keeps the old one's permission bits (a new name gets
    ``0o666`` minus the umask).

    Example:
        >>> import tempfile
        >>> target = tempfile.mkdtemp() + "/x.txt"
        >>> atomic_write(target, lambda p: open(p, "w").write("hello"))
        >>> open(target).read()
        'hello'
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=directory)
    tmp = os.path.join(folder, path.name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _file_mode(path: Path) -> int:
    """The permission bits for a file replacing ``path``: the old file's, else ``0o666`` minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status") as f:  # reading the umask without changing it (Linux)
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, ValueError, StopIteration, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def save_weights(model: nn.Module, path: PathLike, **metadata: Any) -> None:
    """Save ``model``'s weights atomically, as safetensors with metadata (or ``torch.save`` for ``.pth/.pt/.ckpt``).

    The metadata records the architecture and builder arguments (for models from encdec builders), the encdec
    version, and whatever you pass: ``class_names``, ``mean``, ``std`` or other JSON-able values.

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/cnn.safetensors"
        >>> encdec.save_weights(encdec.custom_cnn(), path, class_names=["a", "b", "c", "d"])
        >>> encdec.from_pretrained(path).encdec_config["class_names"]
        ['a', 'b', 'c', 'd']
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = _metadata(model, metadata)
    if Path(path).suffix in (".pth", ".pt", ".ckpt", ".bin"):
        atomic_write(path, lambda tmp: torch.save({"state_dict": state, "encdec": meta}, tmp))
        return
    from safetensors.torch import save_file

    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=meta))


def save_pretrained(model: nn.Module, directory: PathLike, **metadata: Any) -> Path:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` for ``from_pretrained``.

    Example:
        >>> import tempfile, encdec
        >>> folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tempfile.mkdtemp() + "/run")
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'model.safetensors']
    """
    config = getattr(model, "encdec_config", None)
    if not config:
        raise ValueError(f"{type(model).__name__} was not built by an encdec builder, so it has no config to save")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    from . import __version__

    document = {"architecture": config["architecture"], "kwargs": config["kwargs"], "encdec_version": __version__}
    for key in ("class_names", "mean", "std"):
        value = metadata.get(key, config.get(key))
        if value is not None:
            document[key] = list(value)
    save_weights(model, directory / "model.safetensors", **metadata)
    atomic_write(directory / "config.json", lambda tmp: Path(tmp).write_text(json.dumps(document, indent=2) + "\n"))
    return directory


def _json(text: str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise WeightsError(f"{path}: {what} is JSON nested too deeply") from None
    except ValueError as e:
        raise WeightsError(f"{path}: {what} is not valid JSON ({_short(str(e))})") from None


def _check_config_fits(path: Path, weights_path: Path, architecture: str, kwargs: Mapping[str, Any]) -> None:
    """Build the configured model on the meta device (no memory) and refuse a config the weights file cannot fill.

    A hostile config (``num_classes=10**9``) would otherwise allocate gigabytes before loading fails.
    """
    from ._registry import create_model

    try:
        with torch.device("meta"):
            probe = create_model(architecture, **kwargs)
    except Exception as e:  # unknown name (ValueError), bad arguments (TypeError), impossible sizes (RuntimeError)
        raise WeightsError(
            f"{path}: config asks for {_short(architecture)}({_short(_kwargs_text(kwargs), 300)}), which cannot "
            f"be built: {type(e).__name__}: {_short(str(e), 300)}"
        ) from None
    need = sum(t.numel() for t in probe.state_dict().values())  # at least one byte each, whatever the dtype
    have = weights_path.stat().st_size
    if need > have:
        raise WeightsError(
            f"{path}: config asks for {architecture}({_short(_kwargs_text(kwargs), 300)}) with {need} weight "
            f"values, but {weights_path.name} holds only {have} bytes; refused before building the model"
        )


def _kwargs_text(kwargs: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def from_pretrained(path: PathLike, **overrides: Any) -> nn.Module:
    """Build and load a model from a ``save_pretrained`` folder or a ``.safetensors`` file saved by encdec.

    Args:
        path: The folder (``config.json`` + ``model.safetensors``) or the file.
        **overrides: Builder arguments that replace the saved ones.

    Example:
        >>> import tempfile, encdec
        >>> folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tempfile.mkdtemp() + "/run")
        >>> encdec.from_pretrained(folder).num_classes
        3
    """
    from ._registry import create_model

    path = Path(path)
    if path.is_dir():
        config_path, weights_path = path / "config.json", path / "model.safetensors"
        if not config_path.is_file() or not weights_path.is_file():
            raise WeightsError(f"{path}: expected config.json and model.safetensors (written by save_pretrained)")
        try:
            config = _json(config_path.read_text(), config_path, "the file")
        except OSError as e:
            raise WeightsError(f"{config_path}: cannot be read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise WeightsError(f"{config_path}: not valid JSON ({e})") from None
    else:
        weights_path = path
        meta = read_metadata(path)
        if "architecture" not in meta:
            raise WeightsError(
                f"{path}: has no encdec architecture metadata; build the model yourself and call "
                "encdec.load_weights(model, path)"
            )
        config = {"architecture": meta["architecture"], "kwargs": _json(meta.get("kwargs", "{}"), path, "kwargs")}
        config.update({k: _json(meta[k], path, k) for k in ("class_names", "mean", "std") if k in meta})
    if not isinstance(config, dict) or not isinstance(config.get("architecture"), str):
        raise WeightsError(f"{path}: config has no 'architecture' name")
    saved = config.get("kwargs", {})
    if not isinstance(saved, dict):
        raise WeightsError(f"{path}: config 'kwargs' is a {type(saved).__name__}, not an object of builder arguments")
    kwargs = {**saved, **overrides}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    _check_config_fits(path, weights_path, config["architecture"], kwargs)
    model = create_model(config["architecture"], **kwargs)
    load_weights(model, weights_path)
    for key in ("class_names", "mean", "std"):
        if key in config:
            model.encdec_config[key] = config[key]
    return model
