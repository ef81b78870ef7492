"""Crash-safe file writes: a reader sees the previous complete file or the new complete file, never a torn one.

Every file encdec writes (weights, training checkpoints, ``history.json``, ONNX files, the command line's
outputs) goes through ``atomic_write``: the bytes go to a private temporary folder next to the destination,
are flushed and ``fsync``-ed, then renamed over the destination with ``os.replace``, and the directory
itself is ``fsync``-ed so the rename survives a power loss. A writer killed half-way leaves only its temporary
folder, named ``.<file name>.<host>-<pid>.<random>.tmp`` (for a file name over 100 bytes, its first 60 bytes and a
hash of the whole name stand in for it, so the folder's name stays within the 255 bytes a name may have); the
next write to the same file removes the folders
of writers on this host whose process is gone.

Example:
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.json"
    >>> atomic_write_json({"a": 1}, target).read_text()
    '{\\n  "a": 1\\n}'
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

__all__ = [
    "TEMP_SUFFIX",
    "atomic_save",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "ensure_writable_dir",
    "sweep_stale_temporaries",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Suffix of the private folder of an unfinished write: ``.<name>.<host>-<pid>.<random>.tmp``.
TEMP_SUFFIX = ".tmp"

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"
_OWNER = re.compile(r"\.(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)\.[^.]+" + re.escape(TEMP_SUFFIX) + r"$")


def atomic_write(path: PathLike, write: Callable[[Any], Any], *, handle: bool = False) -> Path:
    """Write a file atomically: through ``write(temporary_path)``, or ``write(binary_handle)`` with ``handle=True``.

    The temporary file has ``path``'s name inside a fresh private folder next to ``path``, so writers that make
    side files of their own (safetensors writes a ``.tmpXXXXXX`` and renames it) keep them in that folder, which
    is removed afterwards. The new file keeps the old one's permission bits (a new name gets ``0o666`` minus
    the umask).

    Args:
        path: Destination file; its directory is created if needed.
        write: Writes the whole content, given the temporary file's path (or an open binary handle).
        handle: Pass an open binary handle instead of a path.

    Returns:
        The destination path.

    Raises:
        OSError: The file could not be written (disk full, no permission, ...); the message names the
            destination and the cause, and the previous file at ``path`` is left untouched.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> atomic_write(d / "a.bin", lambda f: f.write(b"hello"), handle=True).read_bytes()
        b'hello'
        >>> atomic_write(d / "b.txt", lambda p: pathlib.Path(p).write_text("hi")).read_text()
        'hi'
    """
    if "\0" in os.fsdecode(path):
        raise OSError(errno.EINVAL, f"cannot write {os.fsdecode(path)!r}: a path cannot contain a NUL character")
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        sweep_stale_temporaries(path)
        folder = tempfile.mkdtemp(prefix=f".{_temp_stem(path.name)}.{_HOST}-{os.getpid()}.", suffix=TEMP_SUFFIX,
                                  dir=directory)
    except OSError as error:
        raise _write_error(path, error) or error from error
    # Inside the private folder the file keeps its name (writers may derive side files from it), unless that name
    # leaves no room for a writer's own suffix (safetensors adds ".tmpXXXXXX") within NAME_MAX (255 bytes).
    inner = path.name if len(os.fsencode(path.name)) <= _LONG_NAME else "file" + path.suffix[-20:]
    tmp = os.path.join(folder, inner)
    try:
        if handle:
            with open(tmp, "wb") as f:
                write(f)
        else:
            write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode(path))
        os.replace(tmp, path)
    except Exception as error:
        failure = _write_error(path, error, directory)
        if failure is None:
            raise
        raise failure from error
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _fsync_directory(directory)
    return path


# File names longer than this many bytes get a shortened stem in temporary names (NAME_MAX is 255 bytes).
_LONG_NAME = 200
_OS_ERROR = re.compile(r"\(os error (\d+)\)")  # how Rust writers (safetensors) quote the system's error


def _temp_stem(name: str) -> str:
    """``name``, or for a name too long to carry the temporary suffix within 255 bytes, its first characters and
    a hash of the whole name (so writers of different long names never share a temporary prefix)."""
    if len(os.fsencode(name)) <= _LONG_NAME - 100:
        return name
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:12]
    short = os.fsencode(name)[:60].decode("utf-8", "ignore")
    return f"{short}~{digest}"


def _write_error(path: Path, error: BaseException, directory: Optional[Path] = None) -> Optional[OSError]:
    """An ``OSError`` naming the destination and the cause, or ``None`` for errors that are not about the disk.

    Serialisers report a full disk in their own words (torch: ``RuntimeError: [enforce fail at
    inline_container.cc] . unexpected pos``; safetensors: ``SafetensorError: ... I/O error: No space left on device
    (os error 28)``), so a non-``OSError`` failure is read for a quoted system error and checked against the free
    space.
    """
    code = getattr(error, "errno", None)
    if not isinstance(error, OSError):
        quoted = _OS_ERROR.search(str(error))
        if quoted is not None:
            code = int(quoted.group(1))
        elif directory is None or not _disk_full(directory):
            return None
        else:
            code = errno.ENOSPC
    cause = os.strerror(code) if code else str(error)
    kept = "the previous file there is untouched" if path.exists() else "nothing was written there"
    return OSError(code, f"cannot write {path}: {cause}; {kept}")


def _disk_full(directory: Path) -> bool:
    try:
        usage = shutil.disk_usage(directory)
    except OSError:
        return False
    return usage.free < 1024 * 1024


def _fsync_directory(directory: Path) -> None:
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # some file systems refuse fsync on directories
        pass
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


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but belongs to someone else
        return False
    return False


def sweep_stale_temporaries(path: PathLike) -> int:
    """Remove the temporary folders left next to ``path`` by writers on this host that were killed.

    Only folders whose name records a host and a process id are considered, and only those of this host whose
    process no longer exists are removed, so a write in progress elsewhere is never disturbed.

    Returns:
        The number of folders removed.

    Example:
        >>> import tempfile, pathlib
        >>> sweep_stale_temporaries(pathlib.Path(tempfile.mkdtemp()) / "model.safetensors")
        0
    """
    path = Path(path)
    removed = 0
    stem = _temp_stem(path.name)
    try:
        candidates = list(path.parent.glob(f".{_glob_escape(stem)}.*{TEMP_SUFFIX}"))
    except OSError:
        return 0
    for folder in candidates:
        owner = _OWNER.search(folder.name[len(stem) + 1:])
        if owner is None or owner["host"] != _HOST or int(owner["pid"]) == os.getpid():
            continue
        if _process_gone(int(owner["pid"])) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def _glob_escape(name: str) -> str:
    """``name`` with the glob metacharacters ``*?[`` escaped."""
    return re.sub(r"([*?[])", r"[\1]", name)


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save`` an object atomically (see ``atomic_write``).

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_save({"x": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "c.pt")
        >>> torch.load(p, weights_only=True)["x"].tolist()
        [1.0, 1.0]
    """
    return atomic_write(path, lambda handle: torch.save(obj, handle), handle=True)


def atomic_write_text(text: str, path: PathLike) -> Path:
    """Write UTF-8 text atomically (see ``atomic_write``).

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_text("hi", pathlib.Path(tempfile.mkdtemp()) / "t.txt").read_text()
        'hi'
    """
    data = text.encode("utf-8")
    return atomic_write(path, lambda handle: handle.write(data), handle=True)


def atomic_write_json(obj: Any, path: PathLike) -> Path:
    """Write JSON atomically (see ``atomic_write``), indented by two spaces.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_json({"a": 1}, pathlib.Path(tempfile.mkdtemp()) / "h.json").read_text()
        '{\\n  "a": 1\\n}'
    """
    return atomic_write_text(json.dumps(obj, indent=2, allow_nan=True), path)


def ensure_writable_dir(directory: PathLike, *, option: str = "directory", fallback: str = "") -> Path:
    """Create ``directory`` if needed and prove a file can be written there, before any long work starts.

    Every leftover temporary folder or file of an earlier writer in that directory is removed.

    Args:
        directory: The folder.
        option: How the caller names it in messages (``"checkpoint_dir"``, ``"--out"``).
        fallback: What the user can do instead, appended to the message.

    Raises:
        PermissionError: The directory cannot be created or written, naming it and the reason.

    Example:
        >>> import tempfile, pathlib
        >>> ensure_writable_dir(pathlib.Path(tempfile.mkdtemp()) / "run").is_dir()
        True
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=TEMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise PermissionError(
            f"{option}={str(directory)!r} is not a writable directory ({error.strerror or error}); "
            f"pass a directory you can write to{fallback}"
        ) from error
    for stale in directory.glob(".*" + TEMP_SUFFIX):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()
    return directory

