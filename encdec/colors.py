"""The colour tables shared by the datasets and ``encdec.viz``: the Pascal VOC colour map (masks saved as RGB
colours are read back through it, labels are drawn with it), tab10's colours and ``class_colours``, the colours a
dataset without its own gets.

Example:
    >>> from encdec.colors import voc_palette
    >>> voc_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["BINARY_FOREGROUND", "BOUNDARY_COLOR", "TAB10", "class_colours", "voc_palette"]

#: Colour of the VOC object boundary (label 255, or class 21 in the 22-class reference models).
BOUNDARY_COLOR: Tuple[int, int, int] = (224, 224, 192)

#: The foreground of the ``binary`` palette: amber, visible both on the black background and on a white page.
BINARY_FOREGROUND: Tuple[int, int, int] = (255, 176, 0)

#: matplotlib's tab10 colours: ten well-separated hues.
TAB10: Tuple[Tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)  # fmt: skip


def voc_palette(n: int = 256) -> np.ndarray:
    """The Pascal VOC colour map: ``n`` RGB colours from the bits of the label (``255 -> (224, 224, 192)``).

    Args:
        n: Number of colours (at most 256).

    Returns:
        A uint8 array ``(n, 3)``.

    Example:
        >>> voc_palette()[[0, 1, 15, 255]].tolist()
        [[0, 0, 0], [128, 0, 0], [192, 128, 128], [224, 224, 192]]
    """
    ids = np.arange(n, dtype=np.int64)
    rgb = np.zeros((n, 3), dtype=np.int64)
    c = ids.copy()
    for j in range(8):  # 8 bit planes, each vectorised over all labels
        for ch in range(3):
            rgb[:, ch] |= ((c >> ch) & 1) << (7 - j)
        c >>= 3
    return rgb.astype(np.uint8)


def class_colours(n: int) -> List[List[int]]:
    """Colours for ``n`` classes whose data names none: black for class 0 (the background), amber for the one
    foreground of two classes, else tab10's colours, then the VOC colour map's.

    Args:
        n: Number of classes (at most 256).

    Returns:
        ``n`` ``[r, g, b]`` lists.

    Example:
        >>> class_colours(2)
        [[0, 0, 0], [255, 176, 0]]
        >>> class_colours(3)
        [[0, 0, 0], [31, 119, 180], [255, 127, 14]]
    """
    table = [list(c) for c in voc_palette(256).tolist()]
    table[0] = [0, 0, 0]
    foreground = [BINARY_FOREGROUND] if n == 2 else TAB10
    for i, colour in enumerate(foreground):
        table[1 + i] = list(colour)
    return table[:n]
