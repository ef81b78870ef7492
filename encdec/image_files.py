"""Reading image files a user names: a pixel limit checked before decoding, and EXIF orientation applied.

Every image encdec reads from a file -- ``encdec.predict`` given paths, ``encdec predict``, the datasets' images
and masks (``encdec.datasets.read_rgb`` / ``read_mask``) and so ``encdec train`` / ``encdec eval`` -- goes
through :func:`open_image`, which

1. opens the path once, without blocking, and only if it is a regular file (``encdec._files.open_regular_file``);
2. reads the header and refuses an image of more than ``max_pixels`` pixels (default :data:`MAX_PIXELS`, Pillow's
   own decompression-bomb threshold) with :class:`ImageTooLargeError`, naming the file, its width x height, the
   limit and the argument that raises it, *before* any pixel is decoded: a 40000 x 40000 PNG of a few hundred
   kilobytes would otherwise take gigabytes. Pillow's own ``DecompressionBombError`` and
   ``DecompressionBombWarning`` never reach the caller; ``max_pixels`` alone decides;
3. decodes the image and turns it upright by its EXIF ``Orientation`` tag (``PIL.ImageOps.exif_transpose``), as
   viewers show it: a phone photo stored sideways with orientation 6 is read as the upright image, with its width
   and height swapped. Masks go through the same step, so a mask carrying the same tag as its photo stays aligned
   with it. Images passed in memory (PIL images, arrays, tensors) are taken as they are; an EXIF block Pillow
   cannot parse leaves the pixels as stored.

Example:
    >>> import tempfile, os
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "wide.png")
    >>> Image.new("L", (300, 200)).save(path)
    >>> open_image(path).size
    (300, 200)
    >>> try:
    ...     open_image(path, max_pixels=10_000)
    ... except ImageTooLargeError as error:
    ...     print(error.width, error.height, error.limit)
    300 200 10000
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Optional, Tuple, Union

from PIL import Image, ImageOps

from ._files import open_regular_file

__all__ = ["MAX_PIXELS", "ImageTooLargeError", "UnreadableImageError", "check_max_pixels", "check_pixels",
           "open_image"]

PathLike = Union[str, "os.PathLike[str]"]

#: The EXIF tag of the orientation (``PIL.ExifTags.Base.Orientation``).
ORIENTATION = 0x0112

#: Default pixel limit: Pillow's own decompression-bomb threshold (``PIL.Image.MAX_IMAGE_PIXELS`` as Pillow ships
#: it, ``1024 * 1024 * 1024 // 4 // 3``: about 89.5 million pixels, a 9459 x 9459 image; 268 MB decoded as RGB).
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


class ImageTooLargeError(ValueError):
    """An image has more pixels than the limit allows; refused before it is decoded.

    Attributes:
        path: The file.
        width: Its width in pixels (``None`` where only the pixel count is known).
        height: Its height in pixels (likewise).
        pixels: ``width * height``.
        limit: The limit it broke.
        reason: The message without the file name.

    Example:
        >>> print(ImageTooLargeError("big.png", 40000, 40000, 1000))
        big.png: the image is 40000x40000 (1,600,000,000 pixels), above the limit of 1,000 pixels (4.8 GB as RGB); \
raise it with max_pixels= (encdec commands: --max-pixels) if you trust the file
    """

    def __init__(self, path: object, width: Optional[int] = None, height: Optional[int] = None,
                 limit: Optional[int] = None, pixels: Optional[int] = None) -> None:
        self.path, self.width, self.height, self.limit = str(path), width, height, limit
        self.pixels = width * height if width is not None and height is not None else int(pixels or 0)
        if limit is None:  # rebuilt from a message alone: a DataLoader worker's error, its traceback before it
            self.reason = self.path.rsplit("ImageTooLargeError: ", 1)[-1].strip()
            super().__init__(self.reason)
            return
        self.reason = self._reason("max_pixels= (encdec commands: --max-pixels)")
        super().__init__(f"{self.path}: {self.reason}")

    def _reason(self, option: str) -> str:
        if self.limit is None:
            return self.reason
        size = f"{self.width}x{self.height} ({self.pixels:,} pixels)" if self.width is not None else \
            f"{self.pixels:,} pixels"
        return (f"the image is {size}, above the limit of {self.limit:,} pixels ({self.pixels * 3 / 1e9:.1f} GB as "
                f"RGB); raise it with {option} if you trust the file")

    # not called ``message``: torch re-raises a DataLoader worker's error as ``type(message=...)`` when the class
    # has an attribute of that name
    def describe(self, option: str, with_path: bool = True) -> str:
        """The message naming ``option`` alone as what raises the limit (the command line names ``--max-pixels``);
        without the leading file name for ``with_path=False``.

        Example:
            >>> ImageTooLargeError("a.png", 20, 10, 100).describe("--max-pixels")
            'a.png: the image is 20x10 (200 pixels), above the limit of 100 pixels (0.0 GB as RGB); raise it with \
--max-pixels if you trust the file'
        """
        if self.limit is None:
            return str(self)
        return f"{self.path}: {self._reason(option)}" if with_path else self._reason(option)

    def __reduce__(self) -> Any:
        return type(self), (self.path, self.width, self.height, self.limit, self.pixels)


class UnreadableImageError(OSError):
    """An image file that cannot be decoded: not an image, truncated or damaged.

    Attributes:
        path: The file.
        reason: Why, in Pillow's words.

    Example:
        >>> print(UnreadableImageError("a.png", "image file is truncated"))
        a.png: cannot decode the image (image file is truncated)
    """

    def __init__(self, path: object, reason: object = "") -> None:
        self.path, self.reason = str(path), str(reason)
        super().__init__(f"{self.path}: cannot decode the image ({self.reason})" if reason else self.path)

    def __reduce__(self) -> Any:
        return type(self), (self.path, self.reason)


def check_max_pixels(max_pixels: Optional[int]) -> Optional[int]:
    """``max_pixels`` checked: a positive integer, or ``None`` for no limit.

    Raises:
        ValueError: Anything else (a bool, a string, zero or less), naming the value.

    Example:
        >>> check_max_pixels(None), check_max_pixels(10)
        (None, 10)
    """
    if max_pixels is not None and (isinstance(max_pixels, bool) or not isinstance(max_pixels, int)
                                   or max_pixels < 1):
        raise ValueError(f"max_pixels must be a positive number of pixels or None (no limit), got {max_pixels!r}")
    return max_pixels


def check_pixels(path: object, size: Tuple[int, int], max_pixels: Optional[int]) -> None:
    """Refuse an image of ``size`` (width, height) above ``max_pixels`` (``None``: no limit).

    Raises:
        ImageTooLargeError: Naming ``path``, the size, the limit and the argument that raises it.

    Example:
        >>> check_pixels("a.png", (100, 100), 10_000)
        >>> check_pixels("a.png", (100, 101), 10_000)
        Traceback (most recent call last):
        ...
        encdec.image_files.ImageTooLargeError: a.png: the image is 100x101 (10,100 pixels), above the limit of \
10,000 pixels (0.0 GB as RGB); raise it with max_pixels= (encdec commands: --max-pixels) if you trust the file
    """
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(path, width, height, max_pixels)


def _header_only(handle: Any, name: str) -> Optional[Image.Image]:
    """The image of ``handle`` opened by its format's plugin without Pillow's size check (the header is parsed,
    nothing decoded), for a file Pillow refused as a decompression bomb: encdec's own limit decides."""
    for format_id in list(Image.ID):
        factory, accept = Image.OPEN[format_id]
        handle.seek(0)
        accepted = not accept or accept(handle.read(16))  # as Image.open tries the plugins
        if not accepted or isinstance(accepted, str):
            continue
        try:
            handle.seek(0)
            return factory(handle, name)
        except (SyntaxError, IndexError, TypeError, ValueError, OSError, EOFError, Image.DecompressionBombError):
            continue  # Pillow checks some sizes inside the plugin too (a GIF frame larger than its screen)
    return None


def open_image(path: PathLike, max_pixels: Optional[int] = MAX_PIXELS, *, what: str = "image") -> Image.Image:
    """An image file decoded (in its own mode: ``P``, ``L``, ``RGB``, ...) and turned upright by its EXIF
    orientation, after its size was checked against ``max_pixels``.

    Args:
        path: The image file.
        max_pixels: Largest ``width * height`` accepted; ``None``: no limit (Pillow's own limit is not applied
            either).
        what: What the file is, for messages (``"image"``, ``"mask"``).

    Returns:
        The loaded PIL image (the file is closed).

    Raises:
        ImageTooLargeError: The image has more than ``max_pixels`` pixels (nothing was decoded).
        OSError: The path is missing, a directory, a FIFO, ... (``encdec._files.NotARegularFileError``).
        UnreadableImageError: Not an image Pillow can read, or a damaged one (an ``OSError`` naming the file and
            Pillow's reason, whatever Pillow raised).

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> path = os.path.join(tempfile.mkdtemp(), "tall.png")
        >>> exif = Image.Exif()
        >>> exif[0x0112] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
        >>> Image.new("RGB", (30, 20)).save(path, exif=exif)
        >>> open_image(path).size  # upright: width and height swapped
        (20, 30)
    """
    max_pixels = check_max_pixels(max_pixels)
    name = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    with open_regular_file(path, what) as handle, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(handle)
        except Image.DecompressionBombError as error:
            image = _header_only(handle, name)
            if image is None:
                raise ImageTooLargeError(name, None, None, _refusing(max_pixels), _pixels_in(error)) from None
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever Pillow raises on a hostile file, named
            raise UnreadableImageError(name, _cause(error, what)) from error
        check_pixels(name, image.size, max_pixels)
        try:
            image.load()
            _upright(image)
        except Image.DecompressionBombError as error:  # a frame larger than the header said (GIF, TIFF, ICO)
            raise ImageTooLargeError(name, None, None, _refusing(max_pixels), _pixels_in(error)) from None
        except MemoryError:
            raise
        except Exception as error:  # noqa: BLE001 - a damaged file fails while decoding: named, with Pillow's words
            raise UnreadableImageError(name, _cause(error, what)) from error
    return image


def _upright(image: Image.Image) -> None:
    """Turn a loaded image upright by its EXIF orientation, in place; an EXIF block Pillow cannot parse leaves the
    pixels as stored (such files were read that way before orientation was honoured, and their pixels are fine)."""
    try:
        exif = image.getexif()
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - damaged EXIF: no orientation to apply
        return
    if exif.get(ORIENTATION, 1) != 1:
        ImageOps.exif_transpose(image, in_place=True)


def _cause(error: Exception, what: str) -> str:
    """Pillow's reason for refusing a file, in words (its own message names a file handle, not the path)."""
    if isinstance(error, Image.UnidentifiedImageError):
        return f"not {'an' if what[0] in 'aeiou' else 'a'} {what} file Pillow can read"
    text = str(error) or type(error).__name__
    return text if isinstance(error, OSError) else f"{type(error).__name__}: {text}"


def _refusing(max_pixels: Optional[int]) -> int:
    """The limit that refused a file Pillow would not even open: ours, else Pillow's own error threshold."""
    return max_pixels if max_pixels is not None else 2 * int(Image.MAX_IMAGE_PIXELS or 0)


def _pixels_in(error: Exception) -> int:
    """The pixel count Pillow's decompression-bomb message states (``Image size (N pixels) exceeds ...``)."""
    words = str(error).replace("(", " ").split()
    return next((int(w) for w in words if w.isdigit()), 0)

