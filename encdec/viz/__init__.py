"""Pictures of segmentations: palettes, label colouring, overlays, prediction grids and training curves.

Everything here is a whole-array operation: ``colorize`` is one palette lookup (``palette[labels]``), a
prediction grid is a few stacks and one reshape, with no Python loop over pixels or images. PNGs are written
with Pillow; only ``plot_history`` needs matplotlib (``pip install "encdec[plot]"``), imported when called.

Example:
    >>> import numpy as np
    >>> from encdec import viz
    >>> viz.colorize(np.array([[0, 1], [15, 255]]))[1, 0].tolist()  # person, VOC colours
    [192, 128, 128]
"""

from .figures import plot_history, save_classification_grid
from .images import overlay, prediction_grid, save_mask, save_prediction_grid, to_rgb
from .palettes import BOUNDARY_COLOR, PALETTES, colorize, get_palette, voc_palette

__all__ = [
    "BOUNDARY_COLOR",
    "PALETTES",
    "colorize",
    "get_palette",
    "overlay",
    "plot_history",
    "prediction_grid",
    "save_classification_grid",
    "save_mask",
    "save_prediction_grid",
    "to_rgb",
    "voc_palette",
]
