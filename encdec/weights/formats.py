"""Checkpoint file formats: recognise a file from its bytes and read it without trusting it.

Three formats are read: safetensors, torch's zip format (``torch.save`` since 1.6) and torch's legacy pickle
format. Every size a file claims (a safetensors header's offsets, a zip member's length, a legacy storage's
element count) is checked against the file's real size before anything is allocated, and pickles are only
ever read through ``torch.load(weights_only=True)``, which runs no code.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, Optional, Tuple, Union

import torch

from .._files import NotARegularFileError, describe_mode, open_regular_file
from .errors import WeightsError, shorten
from .zip_reader import check_zip, load_zip

__all__ = [
    "DIGEST_KEY", "check_regular_file", "describe_non_file", "read_checkpoint_file",
    "read_checkpoint_with_metadata", "read_metadata", "tensor_crc32",
]

PathLike = Union[str, os.PathLike]

MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024

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


def read_checkpoint_file(path: PathLike) -> Any:
    """The object a checkpoint file holds (a dict of tensors for safetensors), read safely whatever its format.

    Raises:
        WeightsError: The file is missing, unreadable, not a checkpoint, damaged, claims more bytes than it
            holds, or asks to run pickled code.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.pt"
        >>> torch.save({"w": torch.zeros(2)}, path)
        >>> read_checkpoint_file(path)["w"].tolist()
        [0.0, 0.0]
    """
    return _read_file(Path(path))[0]


def read_checkpoint_with_metadata(path: PathLike) -> Tuple[Any, Dict[str, str]]:
    """The object a checkpoint file holds and its string metadata (``read_metadata``), from one open of it.

    Raises:
        WeightsError: As ``read_checkpoint_file``.

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/m.safetensors"
        >>> _ = encdec.save_weights(encdec.custom_cnn(), path)
        >>> state, meta = read_checkpoint_with_metadata(path)
        >>> meta["architecture"], len(state) == len(encdec.custom_cnn().state_dict())
        ('custom_cnn', True)
    """
    return _read_file(Path(path))


def read_metadata(path: PathLike) -> Dict[str, str]:
    """The string metadata of a safetensors file (empty for other formats).

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/m.safetensors"
        >>> _ = encdec.save_weights(encdec.custom_cnn(), path)
        >>> read_metadata(path)["architecture"]
        'custom_cnn'
    """
    path = Path(path)
    with _open(path) as f:
        head = f.read(8)
        if len(head) < 8 or not _looks_like_safetensors(path, f, head):
            return {}
        header = _safetensors_header(path, f, head)
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def describe_non_file(path: PathLike) -> Optional[str]:
    """What ``path`` is when it is not a regular file (``"no such file"``, ``"a directory"``, ``"a named pipe
    (FIFO)"``, ``"a device"``, ``"a socket"``, ``"a broken symbolic link"``, ``"a symbolic link loop"``), or
    ``None`` for a regular file. Nothing is opened, so a FIFO cannot block.

    Example:
        >>> import tempfile
        >>> describe_non_file(tempfile.mkdtemp())
        'a directory'
    """
    if "\0" in os.fsdecode(path):
        return "a path containing a NUL character"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a broken symbolic link" if os.path.islink(path) else "no such file"
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symbolic link loop"
        return f"not readable ({error.strerror})"
    return describe_mode(mode)


def check_regular_file(path: PathLike, what: str = "checkpoint") -> None:
    """Raise ``WeightsError`` unless ``path`` is a regular file, saying what it is instead.

    Example:
        >>> import tempfile
        >>> try:
        ...     check_regular_file(tempfile.mkdtemp() + "/missing.pth")
        ... except WeightsError as error:
        ...     print(str(error).split(": ", 1)[1])
        no such checkpoint file
    """
    if "\0" in os.fsdecode(path):
        raise WeightsError(f"{str(os.fsdecode(path))!r}: a path cannot contain a NUL character")
    kind = describe_non_file(path)
    if kind is None:
        return
    if kind == "no such file":
        raise WeightsError(f"{path}: no such {what} file")
    hint = "; for a save_pretrained folder use encdec.from_pretrained" if kind == "a directory" else ""
    raise WeightsError(f"{path}: is {kind}, not a {what} file{hint}")


def _open(path: Path) -> BinaryIO:
    """The one handle a checkpoint is read through: opened once, without blocking, checked to be a regular file
    (a FIFO or device swapped in after ``check_regular_file`` is refused, never waited on)."""
    check_regular_file(path)
    try:
        return open_regular_file(path, "checkpoint")
    except NotARegularFileError as error:
        raise WeightsError(f"{error.strerror} (it changed after it was checked)") from None


def tensor_crc32(tensor: torch.Tensor) -> int:
    """CRC-32 of a tensor's bytes in memory order (what encdec records for every tensor it saves).

    Example:
        >>> tensor_crc32(torch.zeros(2, dtype=torch.uint8))
        1104745215
    """
    data = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return zlib.crc32(memoryview(data))


#: Metadata key of the per-tensor CRC-32 values that encdec writes into safetensors files.
DIGEST_KEY = "encdec_crc32"


def _verify_digests(path: Path, state: Dict[str, torch.Tensor], recorded: Any) -> None:
    """Compare each tensor with the CRC-32 recorded when the file was written; name the first that differs."""
    try:
        digests = json.loads(recorded)
    except (TypeError, ValueError, RecursionError):
        raise WeightsError(f"{path}: corrupt safetensors file: its {DIGEST_KEY} metadata is not valid JSON") from None
    if not isinstance(digests, dict) or set(digests) != set(state):
        raise WeightsError(f"{path}: corrupt safetensors file: its {DIGEST_KEY} metadata does not list the tensors "
                           "the file holds")
    for key, value in state.items():
        if digests[key] != tensor_crc32(value):
            raise WeightsError(
                f"{path}: tensor {shorten(repr(key))} does not match the checksum recorded when encdec wrote the file "
                "(the bytes changed since: a damaged disk or an incomplete copy); restore the file from a good copy"
            )


def _read_file(path: Path) -> Tuple[Any, Dict[str, str]]:
    with _open(path) as f:  # the one open: everything below reads through this handle, never the name again
        head = f.read(8)
        if _looks_like_safetensors(path, f, head):
            header = _safetensors_header(path, f, head)
            state = _load_safetensors(path, f, header, data_start=8 + struct.unpack("<Q", head)[0])
            meta = header.get("__metadata__") or {}
            if meta.get(DIGEST_KEY) is not None:
                _verify_digests(path, state, meta[DIGEST_KEY])
            return state, {str(k): str(v) for k, v in meta.items()}
        if path.suffix == ".safetensors" and len(head) < 8:
            raise WeightsError(
                f"{path}: truncated safetensors file: {len(head)} bytes, shorter than the 8-byte header length field"
            )
        if head.startswith(b"PK\x03\x04"):
            infos = check_zip(path, f)
            data = bytearray(os.fstat(f.fileno()).st_size)
            f.seek(0)
            if f.readinto(data) != len(data):
                raise WeightsError(f"{path}: corrupt torch zip checkpoint: the file changed while it was read")
            loaded = load_zip(path, data, infos, f)  # every member's CRC-32 checked; None when it needs torch's reader
            return (loaded if loaded is not None else _torch_load(path, f)), {}
        if head[:1] == b"\x80":
            _check_legacy_storages(path, f)
            return _torch_load(path, f), {}
    shown = head[:8].hex(" ") if head else "an empty file"
    raise WeightsError(
        f"{path}: not a checkpoint format encdec reads (first bytes: {shown}). Supported: safetensors, "
        "torch.save files (zip or legacy pickle: .pth/.pt/.ckpt/.bin)."
    )


def _looks_like_safetensors(path: Path, f: BinaryIO, head: bytes) -> bool:
    if len(head) < 8:
        return False
    (n,) = struct.unpack("<Q", head)
    if n == 0 or n > MAX_SAFETENSORS_HEADER:
        return path.suffix == ".safetensors"
    f.seek(8)
    return f.read(1) == b"{" or path.suffix == ".safetensors"


def _safetensors_header(path: Path, f, head: bytes) -> Dict[str, Any]:
    """Validate a safetensors header against the file before any tensor memory is allocated."""
    size = os.fstat(f.fileno()).st_size
    (n,) = struct.unpack("<Q", head)
    if n > MAX_SAFETENSORS_HEADER or n > size - 8:
        raise WeightsError(
            f"{path}: corrupt safetensors file: header length {n} bytes exceeds the file ({size} bytes) "
            f"or the {MAX_SAFETENSORS_HEADER}-byte limit"
        )
    f.seek(8)
    try:
        header = json.loads(f.read(n).decode("utf-8"))
    except RecursionError:
        raise WeightsError(f"{path}: corrupt safetensors file: header JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, integers of thousands of digits
        raise WeightsError(
            f"{path}: corrupt safetensors file: header is not valid JSON ({shorten(str(e))})"
        ) from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: corrupt safetensors file: header is a {type(header).__name__}, not an object")
    data_len = size - 8 - n
    spans = []
    for key, info in header.items():
        if key == "__metadata__":
            if info is not None and not isinstance(info, dict):
                raise WeightsError(f"{path}: corrupt safetensors file: __metadata__ is not an object")
            bad = next((k for k, v in (info or {}).items() if not isinstance(v, str)), None)
            if bad is not None:
                raise WeightsError(f"{path}: corrupt safetensors file: __metadata__ value of {shorten(repr(bad))} "
                                   "is not a string")
            continue
        _check_tensor_entry(path, key, info, data_len)
        spans.append((info["data_offsets"][0], info["data_offsets"][1], key))
    spans.sort()
    cursor = 0
    for start, end, key in spans:  # the data section is the tensors' bytes, back to back, nothing else
        if start != cursor:
            what = "overlaps the tensor before it" if start < cursor else "leaves a gap before it"
            raise WeightsError(f"{path}: corrupt safetensors file: tensor {shorten(repr(key))} {what}")
        cursor = end
    if cursor != data_len:
        raise WeightsError(f"{path}: corrupt safetensors file: {data_len - cursor} bytes after the last tensor")
    return header


def _check_tensor_entry(path: Path, key: str, info: Any, data_len: int) -> None:
    def bad(why: str) -> WeightsError:
        return WeightsError(f"{path}: corrupt safetensors file: tensor {shorten(repr(key))} {shorten(why, 300)}")

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


_TORCH_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
    "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
    "U16": getattr(torch, "uint16", None), "U32": getattr(torch, "uint32", None), "U64": getattr(torch, "uint64", None),
    "F8_E4M3": getattr(torch, "float8_e4m3fn", None), "F8_E5M2": getattr(torch, "float8_e5m2", None),
}


def _load_safetensors(path: Path, f: Any, header: Dict[str, Any], data_start: int) -> Dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose header was validated: one read of the data section, then a view
    per tensor (a copy only for a tensor whose offset is not aligned to its element size). Linear in the number
    of tensors, about a microsecond each."""
    data = bytearray(os.fstat(f.fileno()).st_size - data_start)
    f.seek(data_start)
    if f.readinto(data) != len(data):
        raise WeightsError(f"{path}: corrupt safetensors file: the data section could not be read whole")
    base = torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
    state: Dict[str, torch.Tensor] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        dtype = _TORCH_DTYPES[info["dtype"]]
        if dtype is None:
            raise WeightsError(f"{path}: tensor {shorten(repr(key))} has dtype {info['dtype']}, which this torch "
                               "version does not have")
        start, end = info["data_offsets"]
        chunk = base[start:end]
        if start % max(1, _SAFETENSORS_DTYPES[info["dtype"]]):
            chunk = chunk.clone()
        state[key] = chunk.view(dtype).reshape(info["shape"]) if end > start else torch.empty(info["shape"],
                                                                                                 dtype=dtype)
    return state


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


def _check_legacy_storages(path: Path, f: BinaryIO) -> None:
    """Refuse a legacy (non-zip) torch file whose storages claim more bytes than the file holds.

    The legacy loader allocates every storage at the size its pickle declares before reading the data, so a
    few bytes can ask for terabytes. This scan resolves no globals and runs no code; anything it cannot parse
    is left to ``torch.load``, which refuses it with its own message.
    """
    size = os.fstat(f.fileno()).st_size
    scanner = None
    try:
        f.seek(0)
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
                f"{path}: corrupt legacy torch checkpoint: storage {shorten(repr(key))} claims {nbytes} bytes "
                f"({total} in all so far) but the file has {size}; refused before allocating"
            )


def _torch_load(path: Path, f: BinaryIO) -> Any:
    try:
        f.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy files warn about TypedStorage; the result is checked below
            return torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        lines = [line.strip() for line in str(e).splitlines()]
        detail = next((line for line in lines if "GLOBAL" in line or "nsupported" in line), lines[-1] if lines else "")
        if "GLOBAL" in detail or "global" in detail:
            what = "the file asks the unpickler to run code or build objects"
        else:
            what = "the file is damaged or uses pickle instructions a safe loader does not run"
        raise WeightsError(
            f"{path}: refused: {what} ({shorten(detail, 300)}). "
            "encdec reads checkpoints with torch.load(weights_only=True) and never runs pickled code. "
            "A whole pickled model must be re-saved as model.state_dict(); if you trust the file, load it "
            "yourself and pass the state dict to encdec.load_state_dict."
        ) from None
    except Exception as e:  # torch raises RuntimeError, EOFError, KeyError, MemoryError, ... for damaged files
        raise WeightsError(
            f"{path}: unreadable torch checkpoint ({type(e).__name__}: {shorten(str(e), 300)})"
        ) from None


