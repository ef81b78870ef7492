"""Opening files a user names without trusting the path: once, without blocking, and only regular files.

A path checked with ``os.stat`` and then opened by name can be swapped in between (a FIFO, whose blocking open
waits forever for a writer; a device). ``open_regular_file`` opens the path once with ``O_NONBLOCK``, checks
the opened handle with ``fstat`` and returns it; everything is then read through that handle, never by name again.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> _ = path.write_text("hi")
    >>> with open_regular_file(path) as f:
    ...     f.read()
    b'hi'
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO, Optional, Union

__all__ = ["IMAGE_SUFFIXES", "NotARegularFileError", "describe_mode", "open_regular_file", "read_regular_file"]

PathLike = Union[str, "os.PathLike[str]"]

#: File name endings read as images where a folder of images is given (``encdec predict``, ``encdec.quantize``).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class NotARegularFileError(OSError):
    """A path that is missing, not a regular file (a directory, a FIFO, a device, a socket), or unreadable; the
    message names the path and what it is.

    Example:
        >>> issubclass(NotARegularFileError, OSError)
        True
    """


def describe_mode(mode: int) -> Optional[str]:
    """What a file of this ``st_mode`` is when it is not a regular file (``"a named pipe (FIFO)"``, ...); ``None``
    for a regular file.

    Example:
        >>> describe_mode(stat.S_IFIFO), describe_mode(stat.S_IFREG)
        ('a named pipe (FIFO)', None)
    """
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_name(path: PathLike) -> str:
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if "\0" in text:
        raise NotARegularFileError(errno.EINVAL, f"{text!r}: a path cannot contain a NUL character")
    return text


def open_regular_file(path: PathLike, what: str = "") -> BinaryIO:
    """Open ``path`` for reading once, without blocking, and return the handle if it is a regular file.

    Args:
        path: The file.
        what: What the caller expects (``"image"``, ``"config"``), for messages: ``"x.png: is a directory, not an
            image file"``.

    Raises:
        NotARegularFileError: The path is missing, contains NUL, cannot be opened, or is not a regular file
            (named: a directory, a named pipe (FIFO), a device, a socket).

    Example:
        >>> import tempfile
        >>> try:
        ...     open_regular_file(tempfile.mkdtemp(), "image")
        ... except NotARegularFileError as error:
        ...     print(str(error).split(": ", 1)[1])
        is a directory, not an image file
    """
    text = _check_name(path)
    noun = f"{what} file" if what else "file"
    article = "an" if noun[0] in "aeiou" else "a"
    try:
        fd = os.open(text, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise NotARegularFileError(errno.ENOENT, f"{text}: no such {noun}") from None
    except IsADirectoryError:
        raise NotARegularFileError(errno.EISDIR, f"{text}: is a directory, not {article} {noun}") from None
    except OSError as error:
        kind = "a symbolic link loop" if error.errno == errno.ELOOP else None
        detail = f"is {kind}" if kind else f"cannot be opened ({error.strerror})"
        raise NotARegularFileError(error.errno, f"{text}: {detail}") from None
    try:
        kind = describe_mode(os.fstat(fd).st_mode)
    except OSError as error:
        os.close(fd)
        raise NotARegularFileError(error.errno, f"{text}: cannot be read ({error.strerror})") from None
    if kind is not None:
        os.close(fd)
        raise NotARegularFileError(errno.EINVAL, f"{text}: is {kind}, not {article} {noun}")
    return os.fdopen(fd, "rb")


def read_regular_file(path: PathLike, what: str = "", limit: int = 64 * 1024 * 1024) -> bytes:
    """The bytes of a regular file, read through one non-blocking open (``open_regular_file``).

    Raises:
        NotARegularFileError: As ``open_regular_file``, or the file is larger than ``limit`` bytes.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "c.json"
        >>> _ = path.write_text("{}")
        >>> read_regular_file(path, "config")
        b'{}'
    """
    with open_regular_file(path, what) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise NotARegularFileError(errno.EFBIG, f"{path}: {size} bytes, more than the {limit} a {what or 'file'} "
                                                    "may have")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotARegularFileError(errno.EFBIG, f"{path}: grew past {limit} bytes while it was read")
    return data
