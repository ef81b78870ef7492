"""torch's zip checkpoint format: structural checks before anything is allocated, and a reader for files that
hold only containers, numbers, strings and tensors (the usual ``torch.save(model.state_dict())``), which checks
every member's CRC-32 and builds tensors as views of the file's bytes without running any code.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Optional

import torch

from .._files import NotARegularFileError, open_regular_file
from .errors import WeightsError, listing, shorten

__all__ = ["check_zip", "load_zip"]


# Compressed members may be small records (torch writes every record stored; other archivers deflate the small
# ones): anything larger could be a deflate bomb, whose inflated size is only known after inflating it.
_MAX_COMPRESSED_MEMBER = 1024 * 1024


def check_zip(path: Path, handle: Optional[BinaryIO] = None) -> List[zipfile.ZipInfo]:
    """Refuse zip archives that are not torch checkpoints, or whose members claim more bytes than they can hold
    or than a safe inflation allows; the archive's members otherwise.

    torch's reader allocates each record's declared uncompressed size before reading it, so a member that
    claims terabytes must be refused here, before ``torch.load`` sees it. ``handle``: the file opened once by the
    caller, read through instead of opening ``path`` again.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "m.pth"
        >>> torch.save({"w": torch.zeros(3)}, path)
        >>> any(i.filename.endswith("data.pkl") for i in check_zip(path))
        True
    """
    if handle is None:
        try:
            with open_regular_file(path, "checkpoint") as f:
                return check_zip(path, f)
        except NotARegularFileError as error:
            raise WeightsError(error.strerror) from None
    try:
        size = os.fstat(handle.fileno()).st_size
        handle.seek(0)
        with zipfile.ZipFile(handle) as z:
            infos = z.infolist()
    except Exception as e:  # BadZipFile, OSError, ValueError, EOFError, NotImplementedError, struct.error, ...
        raise WeightsError(f"{path}: corrupt torch zip checkpoint ({type(e).__name__}: {shorten(str(e))})") from None
    names = [i.filename for i in infos]
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        raise WeightsError(
            f"{path}: a zip archive without a data.pkl record, so not a torch.save checkpoint "
            f"(members: {listing([shorten(n) for n in names], 5) or 'none'})"
        )
    for info in infos:
        stored = info.compress_type == zipfile.ZIP_STORED
        limit = size if stored else min(1032 * info.compress_size + 1024, _MAX_COMPRESSED_MEMBER)
        if info.file_size > limit or info.compress_size > size:
            why = ("claims" if stored or info.file_size <= _MAX_COMPRESSED_MEMBER else
                   "is compressed (torch.save writes records uncompressed; re-save the file with torch.save) and "
                   "claims")
            raise WeightsError(
                f"{path}: corrupt torch zip checkpoint: member {shorten(repr(info.filename))} {why} "
                f"{info.file_size} bytes ({info.compress_size} stored) in a {size}-byte file; refused before "
                "allocating"
            )
    return infos


def _crc_error(path: Path, member: str) -> WeightsError:
    return WeightsError(f"{path}: corrupt torch zip checkpoint: member {shorten(repr(member))} does not match its "
                        "CRC-32 (the bytes changed after the file was written: a damaged disk or an incomplete "
                        "copy); restore the file from a good copy")


class _NeedsTorch(Exception):
    """The pickle holds something beyond plain containers and tensors: torch's own safe reader takes it."""


# torch's typed-storage names in a checkpoint's pickle, and the dtype of their elements.
_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *args: Any) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for the fast reader: a view of the storage, every index checked."""
    if not (isinstance(storage, torch.Tensor) and isinstance(offset, int) and isinstance(size, tuple)
            and isinstance(stride, tuple) and len(size) == len(stride)
            and all(isinstance(v, int) and v >= 0 for v in (offset, *size, *stride))):
        raise _NeedsTorch
    if all(size) and offset + sum((n - 1) * st for n, st in zip(size, stride)) >= storage.numel():
        raise WeightsError(f"a tensor of size {list(size)} at offset {offset} reaches past its storage of "
                           f"{storage.numel()} elements")
    return torch.as_strided(storage, size, stride, offset) if storage.numel() else torch.empty(size,
                                                                                               dtype=storage.dtype)


def _rebuild_parameter(data: Any, *args: Any) -> Any:
    return data


class _StateDictUnpickler(pickle.Unpickler):
    """Reads a torch zip checkpoint's pickle when it holds only containers, numbers, strings and tensors: every
    global outside a short allow-list, and every unknown persistent id, hands the file to torch's reader."""

    _ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
                ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

    def __init__(self, pickled: bytes, records: Dict[str, Any], prefix: str) -> None:
        super().__init__(io.BytesIO(pickled))
        self.records, self.prefix = records, prefix
        self.storages: Dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _STORAGE_DTYPES[name]
        raise _NeedsTorch

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], torch.dtype)
                and isinstance(pid[2], str) and isinstance(pid[4], int)):
            raise _NeedsTorch
        _, dtype, key, _location, numel = pid
        if key in self.storages:
            return self.storages[key]
        record = self.records.get(f"{self.prefix}data/{key}")
        if record is None:
            raise WeightsError(f"the pickle names storage {shorten(repr(key))}, which the archive does not hold")
        data, start, size = record
        width = torch.empty((), dtype=dtype).element_size()
        if size != numel * width:
            raise WeightsError(f"storage {shorten(repr(key))} holds {size} bytes for {numel} elements of {dtype}")
        raw = (torch.frombuffer(data, dtype=torch.uint8, count=size, offset=start) if size
               else torch.empty(0, dtype=torch.uint8))
        storage = (raw if start % width == 0 else raw.clone()).view(dtype)
        self.storages[key] = storage
        return storage


def load_zip(path: Path, data: bytearray, infos: List[zipfile.ZipInfo],
             handle: Optional[BinaryIO] = None) -> Optional[Any]:
    """The object a torch zip checkpoint holds, from the file's bytes ``data``: every member checked against its
    CRC-32, tensors built as views of ``data``. ``None`` when the pickle needs torch's own reader. Compressed
    members are inflated from ``handle`` (the file opened once by the caller), else from a copy of ``data``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "m.pth"
        >>> torch.save({"w": torch.arange(3.0)}, path)
        >>> load_zip(path, bytearray(path.read_bytes()), check_zip(path))["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    view = memoryview(data)
    records: Dict[str, Any] = {}
    for info in infos:
        local = info.header_offset
        if local + 30 > len(data) or data[local:local + 4] != b"PK\x03\x04":
            raise WeightsError(f"{path}: corrupt torch zip checkpoint: member {shorten(repr(info.filename))} has no "
                               "local header where the directory says")
        name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
        start = local + 30 + name_len + extra_len
        if info.compress_type != zipfile.ZIP_STORED:  # small by _check_zip: inflate, which checks the CRC
            try:
                source = handle if handle is not None else io.BytesIO(data)
                source.seek(0)
                with zipfile.ZipFile(source) as archive:
                    payload = archive.read(info)
            except zipfile.BadZipFile:
                raise _crc_error(path, info.filename) from None
            except Exception as e:
                raise WeightsError(f"{path}: corrupt torch zip checkpoint ({type(e).__name__}: "
                                   f"{shorten(str(e))})") from None
            records[info.filename] = (bytearray(payload), 0, len(payload))
            continue
        end = start + info.compress_size
        if end > len(data) or info.compress_size != info.file_size:
            raise WeightsError(f"{path}: corrupt torch zip checkpoint: member {shorten(repr(info.filename))} runs "
                               "past the end of the file")
        if zlib.crc32(view[start:end]) != info.CRC:
            raise _crc_error(path, info.filename)
        records[info.filename] = (data, start, info.file_size)
    pickle_name = next(n for n in records if n.endswith("data.pkl"))
    prefix = pickle_name[: -len("data.pkl")]
    order = records.get(prefix + "byteorder")
    if prefix + "version" not in records or (order is not None
                                             and bytes(order[0][order[1]:order[1] + order[2]]) != b"little"):
        return None  # not torch's usual layout: its own reader decides
    pickled, start, size = records[pickle_name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # frombuffer on a bytearray warns about writability: it is ours
            return _StateDictUnpickler(bytes(pickled[start:start + size]), records, prefix).load()
    except Exception:  # noqa: BLE001 - anything unusual (a global, a damaged pickle): torch's reader decides
        return None
