"""The two model shapes every encdec network takes: encoder -> decoder -> head, and backbone -> pool -> head."""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..blocks import classification_head
from ..encoders import Encoder
from ..input_spec import InputSizeError, InputSpec, check_floating, input_spec_of, nearest_valid_sizes

__all__ = [
    "InputSizeError", "InputSpec", "SegmentationModel", "ImageClassifier", "check_floating", "input_spec_of",
    "nearest_valid_sizes",
]


def _model_name(model: nn.Module) -> str:
    return (getattr(model, "encdec_config", None) or {}).get("architecture", type(model).__name__)


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
        reference_size: The side the reference checkpoints were trained at.
        aux_params: segmentation_models_pytorch's auxiliary head on the encoder's last map (``classes``,
            ``pooling``, ``dropout``, ``activation``): a :class:`~encdec.blocks.ClassificationHead` named
            ``classification_head``, whose output :meth:`forward_with_labels` returns.

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
        reference_size: int = 256,
        aux_params: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.head = head
        self.num_classes = num_classes
        self.in_channels = in_channels
        # the encoder's own rule (timm's fixed-size or patch-grid models) joins the decoder's
        if not isinstance(encoder, Encoder):
            missing = [a for a in ("name", "out_channels", "strides", "left_out", "size_multiple", "fixed_size")
                       if not hasattr(encoder, a)]
            raise TypeError(f"{type(encoder).__name__} is not an encoder: it lacks {', '.join(missing)} of the "
                            "encoder contract (encdec.encoders.Encoder)")
        multiple = math.lcm(size_multiple, int(encoder.size_multiple))
        fixed = encoder.fixed_size
        if fixed is not None and fixed % multiple:
            raise InputSizeError(f"{_model_name(self)}: the encoder takes only {fixed}x{fixed} inputs, which the "
                                 f"decoder cannot take (sides divisible by {multiple}); choose another encoder")
        self.input_spec = InputSpec(in_channels, multiple, max(min_size, multiple), fixed,
                                    fixed if fixed is not None else reference_size)
        self.classification_head = classification_head(encoder.out_channels[-1], aux_params)
        #: ``forward`` returns ``(masks, labels)`` as smp's models do (``fit`` sets it while it trains the head);
        #: otherwise the masks alone, so the model goes wherever a segmentation model goes.
        self.returns_labels = False

    @property
    def size_multiple(self) -> int:
        """Height and width must be divisible by this (``input_spec.multiple``)."""
        return self.input_spec.multiple

    @property
    def min_size(self) -> int:
        """Smallest accepted height and width (``input_spec.min_size``)."""
        return self.input_spec.min_size

    def valid_size(self, side: int) -> int:
        """The smallest valid side length that is at least ``side``.

        Example:
            >>> import encdec
            >>> encdec.resnet34_unet().valid_size(250)
            256
        """
        return self.input_spec.valid_size(side)

    def check_input(self, x: Tensor) -> None:
        """Raise ``InputSizeError`` naming the nearest valid sizes when ``x`` does not fit the model.

        Example:
            >>> import encdec
            >>> encdec.unet().check_input(torch.zeros(1, 3, 32, 32))
        """
        self.input_spec.check(x, _model_name(self))

    def forward(self, x: Tensor) -> Tensor:
        checking = not torch.jit.is_scripting() and not torch.compiler.is_compiling()
        if checking:
            self.check_input(x)
        features = self.encoder(x)
        if checking:
            self._check_maps(x, features)
        masks = self.head(self.decoder(features))
        if self.returns_labels and self.classification_head is not None:
            return masks, self.classification_head(features[-1])
        return masks

    def forward_with_labels(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """The masks' logits and the auxiliary head's output on the encoder's last map, as smp's models with
        ``aux_params`` return them.

        Raises:
            ValueError: The model was built without ``aux_params``.

        Example:
            >>> import encdec
            >>> model = encdec.fpn(encoder="resnet18", aux_params={"classes": 4}).eval()
            >>> [tuple(t.shape) for t in model.forward_with_labels(torch.zeros(1, 3, 64, 64))]
            [(1, 2, 64, 64), (1, 4)]
        """
        if self.classification_head is None:
            raise ValueError(f"{_model_name(self)} has no classification head: build it with aux_params="
                             "{'classes': N}")
        previous, self.returns_labels = self.returns_labels, True
        try:
            return self(x)
        finally:
            self.returns_labels = previous

    def _check_maps(self, x: Tensor, features: Sequence[Tensor]) -> None:
        """Raise ``InputSizeError`` when an encoder map is not ``input / stride`` at a size its stride divides:
        the decoder could not merge it (a few timm encoders pad or crop at some sizes, e.g. MobileViT-v2 pads odd
        patch grids)."""
        height, width = x.shape[-2:]
        for feature, stride in zip(features, self.encoder.strides):
            if height % stride or width % stride:
                continue
            if tuple(feature.shape[-2:]) != (height // stride, width // stride):
                name = self.encoder.name
                raise InputSizeError(
                    f"{_model_name(self)}: encoder {name} gives a {feature.shape[-2]}x{feature.shape[-1]} map at "
                    f"stride {stride} for a {height}x{width} input, where the decoder needs "
                    f"{height // stride}x{width // stride}; this encoder pads or crops its maps at this size. Try "
                    f"sides divisible by {2 * self.size_multiple} (MobileViT-v2, for one, needs an even patch grid)"
                )


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
        min_size: Smallest accepted height and width (the features' total stride).
        reference_size: The side the reference checkpoints were trained at.

    Example:
        >>> import encdec
        >>> encdec.custom_cnn(num_classes=4)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4])
    """

    def __init__(self, features: nn.Module, head: nn.Module, *, num_classes: int, in_channels: int,
                 min_size: int = 32, reference_size: int = 32) -> None:
        super().__init__()
        self.features = features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = head
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.input_spec = InputSpec(in_channels, 1, min_size, None, reference_size)

    def forward_features(self, x: Tensor) -> Tensor:
        """Pooled, flattened features ``(N, D)`` before the head.

        Example:
            >>> import encdec
            >>> encdec.custom_cnn().forward_features(torch.zeros(1, 3, 32, 32)).shape
            torch.Size([1, 512])
        """
        self.input_spec.check(x, _model_name(self))
        feats: Union[Tensor, List[Tensor], Sequence[Tensor]] = self.features(x)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        return torch.flatten(self.pool(feats), 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))
