"""Per-channel normalisation constants, defined once for the whole package.

Example:
    >>> from encdec.normalization import IMAGENET_MEAN, CIFAR10_STD
    >>> IMAGENET_MEAN
    (0.485, 0.456, 0.406)
    >>> CIFAR10_STD
    (0.2023, 0.1994, 0.201)
"""

from __future__ import annotations

from typing import Tuple

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "CIFAR10_MEAN", "CIFAR10_STD", "SHAPES_MEAN", "SHAPES_STD"]

#: ImageNet channel mean (RGB, values in [0, 1]): torchvision's encoders and the VOC references use it.
IMAGENET_MEAN: Tuple[float, float, float] = (0.485, 0.456, 0.406)
#: ImageNet channel standard deviation.
IMAGENET_STD: Tuple[float, float, float] = (0.229, 0.224, 0.225)
#: CIFAR-10 channel mean as the CIFAR-10 report's code normalises.
CIFAR10_MEAN: Tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
#: CIFAR-10 channel standard deviation as the reference code normalises.
CIFAR10_STD: Tuple[float, float, float] = (0.2023, 0.1994, 0.2010)
#: Channel mean of raw ``SyntheticShapes`` images (measured over 2,000 default items).
SHAPES_MEAN: Tuple[float, float, float] = (0.5, 0.5, 0.5)
#: Channel standard deviation of ``SyntheticShapes`` images.
SHAPES_STD: Tuple[float, float, float] = (0.265, 0.265, 0.265)
