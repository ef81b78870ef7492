"""The Pascal VOC colour map, shared by the datasets (masks saved as RGB colours are read back through it) and
by ``encdec.viz`` (labels are drawn with it).

Example:
    >>> from encdec.colors import voc_palette
    >>> voc_palette(3).tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

__all__ = ["BOUNDARY_COLOR", "voc_palette"]

#: Colour of the VOC object boundary (label 255, or class 21 in the 22-class reference models).
BOUNDARY_COLOR: Tuple[int, int, int] = (224, 224, 192)


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
