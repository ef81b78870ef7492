"""The two model shapes every encdec network takes: encoder -> decoder -> head, and backbone -> pool -> head."""

from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ["InputSizeError", "SegmentationModel", "ImageClassifier", "nearest_valid_sizes"]


class InputSizeError(ValueError):
    """An input whose channel count or spatial size the model cannot take; the message says what would fit."""


def nearest_valid_sizes(side: int, multiple: int, minimum: int) -> Tuple[int, int]:
    """The valid sides just below and just above ``side`` for a ``multiple`` / ``minimum`` size rule.

    Example:
        >>> nearest_valid_sizes(250, 64, 64)
        (192, 256)
    """
    below = max(minimum, (side // multiple) * multiple)
    above = max(minimum, -(-side // multiple) * multiple)
    if below > side:
        below = above
    return below, above


def check_floating(x: Tensor) -> None:
    """Raise ``InputSizeError`` when ``x`` is not floating point (e.g. raw uint8 images).

    Example:
        >>> try:
        ...     check_floating(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
        ... except InputSizeError as error:
        ...     print(str(error).split(";")[0])
        expected floating-point images, got torch.uint8
    """
    if not x.is_floating_point():
        raise InputSizeError(
            f"expected floating-point images, got {x.dtype}; convert with x.float() / 255 and normalise "
            "with the model's mean and std"
        )


class SegmentationModel(nn.Module):
    """An encoder that returns feature maps from high to low resolution, a decoder and a per-pixel head.

    Args:
        encoder: Module mapping an image to a list of feature maps (high to low resolution).
        decoder: Module mapping that list to one feature map.
        head: Module mapping the decoder output to ``num_classes`` logits per pixel.
        num_classes: Output channels.
        in_channels: Expected input channels.
        size_multiple: Height and width must be divisible by this.
        min_size: Smallest accepted height and width.

    Example:
        >>> import encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> model(torch.zeros(1, 3, 32, 48)).shape
        torch.Size([1, 3, 32, 48])
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        head: nn.Module,
        *,
        num_classes: int,
        in_channels: int,
        size_multiple: int,
        min_size: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.size_multiple = size_multiple
        self.min_size = max(min_size, size_multiple)

    def valid_size(self, side: int) -> int:
        """The smallest valid side length that is at least ``side``.

        Example:
            >>> import encdec
            >>> encdec.resnet34_unet().valid_size(250)
            256
        """
        return nearest_valid_sizes(side, self.size_multiple, self.min_size)[1]

    def check_input(self, x: Tensor) -> None:
        """Raise ``InputSizeError`` naming the nearest valid sizes when ``x`` does not fit the model."""
        if x.dim() != 4:
            raise InputSizeError(f"expected a batch of images (N, C, H, W), got a tensor of shape {tuple(x.shape)}")
        check_floating(x)
        if x.shape[1] != self.in_channels:
            raise InputSizeError(
                f"expected {self.in_channels} input channels, got {x.shape[1]} (input shape {tuple(x.shape)}); "
                f"build the model with in_channels={x.shape[1]} or convert the images"
            )
        bad = [(name, side) for name, side in zip(("height", "width"), x.shape[-2:])
               if side % self.size_multiple or side < self.min_size]
        if bad:
            name, side = bad[0]
            lo, hi = nearest_valid_sizes(side, self.size_multiple, self.min_size)
            rule = (f"divisible by {self.size_multiple}" if self.size_multiple > 1 else "any size")
            model = (getattr(self, "encdec_config", None) or {}).get("architecture", type(self).__name__)
            raise InputSizeError(
                f"{model} needs height and width {rule} and at least {self.min_size}; "
                f"got {name} {side} (input shape {tuple(x.shape)}). Nearest valid sizes: {lo} and {hi}. "
                "Pad or resize the input, or use encdec.predict, which pads for you."
            )

    def forward(self, x: Tensor) -> Tensor:
        if not torch.jit.is_scripting() and not torch.compiler.is_compiling():
            self.check_input(x)
        return self.head(self.decoder(self.encoder(x)))


class ImageClassifier(nn.Module):
    """A feature extractor, global average pooling and a classification head.

    The pooling is ``AdaptiveAvgPool2d(1)``: on the reference input sizes the feature map is already 1x1 (or
    2x2 for ``resnet50_cifar``, whose reference ``AvgPool2d(2, 2)`` is the same average), so outputs equal the
    reference's there, and other sizes work too.

    Args:
        features: Module mapping images to a feature map, or to a list of them (the last is used).
        head: Module mapping pooled features to logits.
        num_classes: Output classes.
        in_channels: Expected input channels.

    Example:
        >>> import encdec
        >>> encdec.custom_cnn(num_classes=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """

    def __init__(self, features: nn.Module, head: nn.Module, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head
        self.num_classes = num_classes
        self.in_channels = in_channels

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled, flattened features ``(N, D)`` before the head."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputSizeError(
                f"expected images (N, {self.in_channels}, H, W), got a tensor of shape {tuple(x.shape)}"
            )
        check_floating(x)
        feats: Union[Tensor, List[Tensor], Sequence[Tensor]] = self.features(x)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        return torch.flatten(self.pool(feats), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))
