"""What images a model accepts: ``InputSpec``, the one size contract every encdec model carries, and the
``InputSizeError`` it raises.

Example:
    >>> from encdec.input_spec import InputSpec
    >>> InputSpec(multiple=32, min_size=32).rule()
    'height and width divisible by 32'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple, Union

from torch import Tensor, nn

__all__ = ["InputSizeError", "InputSpec", "check_floating", "input_spec_of", "nearest_valid_sizes", "resized_side",
           "size_pair"]


class InputSizeError(ValueError):
    """An input whose channel count, dtype or spatial size the model cannot take; the message says what would fit.

    Example:
        >>> issubclass(InputSizeError, ValueError)
        True
    """


def size_pair(size: Union[int, Sequence[int]], name: str = "size") -> Tuple[int, int]:
    """``(height, width)`` from one side or a pair, both positive integers.

    Raises:
        ValueError: ``size`` is neither a positive integer nor two of them, naming ``name``.

    Example:
        >>> size_pair(64), size_pair((32, 48))
        ((64, 64), (32, 48))
    """
    values = (size, size) if isinstance(size, int) and not isinstance(size, bool) else tuple(size)
    if len(values) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}")
    return int(values[0]), int(values[1])


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


@dataclass(frozen=True)
class InputSpec:
    """The inputs a model accepts: channels and the rule on height and width, in one place.

    Every encdec model carries one as ``model.input_spec``; ``encdec.predict`` pads to it, the exporters
    trace with it, the registry's human-readable rule is ``rule``, and the model's own input check raises
    from it.

    Attributes:
        channels: Image channels.
        multiple: Height and width must be divisible by this.
        min_size: Smallest accepted height and width.
        fixed: The one accepted side, for models that flatten the image (``resfcn18``); ``None`` otherwise.
        reference: The side the reference checkpoints were trained at (the default size of examples, exports
            and summaries).

    Example:
        >>> spec = InputSpec(multiple=64, min_size=64, reference=256)
        >>> spec.rule(), spec.valid_size(250), spec.nearest(250)
        ('height and width divisible by 64', 256, (192, 256))
    """

    channels: int = 3
    multiple: int = 1
    min_size: int = 1
    fixed: Optional[int] = None
    reference: int = 224

    def rule(self) -> str:
        """The size rule in words.

        Example:
            >>> InputSpec(fixed=192).rule()
            'exactly 192x192'
        """
        if self.fixed is not None:
            return f"exactly {self.fixed}x{self.fixed}"
        if self.multiple > 1:
            text = f"height and width divisible by {self.multiple}"
            return text + (f", at least {self.min_size}" if self.min_size > self.multiple else "")
        return f"any height and width of at least {self.min_size}"

    def fits(self, side: int) -> bool:
        """Whether one side length is accepted.

        Example:
            >>> InputSpec(multiple=16, min_size=16).fits(40)
            False
        """
        if self.fixed is not None:
            return side == self.fixed
        return side % self.multiple == 0 and side >= self.min_size

    def nearest(self, side: int) -> Tuple[int, int]:
        """The accepted sides just below and just above ``side`` (equal when only one is accepted).

        Example:
            >>> InputSpec(multiple=32, min_size=32).nearest(100)
            (96, 128)
        """
        if self.fixed is not None:
            return self.fixed, self.fixed
        return nearest_valid_sizes(side, self.multiple, self.min_size)

    def valid_size(self, side: int) -> int:
        """The smallest accepted side that is at least ``side`` (the fixed side for fixed-size models).

        Example:
            >>> InputSpec(multiple=16, min_size=16).valid_size(30)
            32
        """
        return self.nearest(side)[1]

    def check(self, x: Tensor, model_name: str) -> None:
        """Raise ``InputSizeError`` for a batch the model cannot take, naming the nearest valid sizes.

        Example:
            >>> try:
            ...     InputSpec(multiple=16, min_size=16).check(torch.zeros(1, 3, 40, 48), "unet")
            ... except InputSizeError as error:
            ...     print(str(error).split(". ")[0])
            unet needs height and width divisible by 16; got height 40 (input shape (1, 3, 40, 48))
        """
        if x.dim() != 4:
            raise InputSizeError(
                f"{model_name} expects a batch of images (N, C, H, W) with C = {self.channels}, got a tensor of "
                f"shape {tuple(x.shape)}"
            )
        check_floating(x)
        if x.shape[1] != self.channels:
            raise InputSizeError(
                f"{model_name} expects images (N, {self.channels}, H, W), got {x.shape[1]} channels (input shape "
                f"{tuple(x.shape)}); build the model with in_channels={x.shape[1]} or convert the images"
            )
        bad = [(name, int(side)) for name, side in zip(("height", "width"), x.shape[-2:]) if not self.fits(int(side))]
        if not bad:
            return
        name, side = bad[0]
        if self.fixed is not None:
            raise InputSizeError(
                f"{model_name} was built for inputs (N, {self.channels}, {self.fixed}, {self.fixed}), got "
                f"{tuple(x.shape)}; resize the images to {self.fixed}x{self.fixed} or build with "
                f"input_size={side}"
            )
        lo, hi = self.nearest(side)
        raise InputSizeError(
            f"{model_name} needs {self.rule()}; got {name} {side} (input shape {tuple(x.shape)}). "
            f"Nearest valid sizes: {lo} and {hi}. Pad or resize the input, or use encdec.predict, which pads for you."
        )


def input_spec_of(model: nn.Module) -> Optional[InputSpec]:
    """A model's ``InputSpec``: its ``input_spec``, or one built from ``size_multiple`` / ``min_size`` /
    ``in_channels`` attributes (wrappers that forward those), or ``None`` for a model that declares nothing.

    Example:
        >>> import encdec
        >>> input_spec_of(encdec.unet()).multiple, input_spec_of(torch.nn.Conv2d(3, 3, 1))
        (16, None)
    """
    spec = getattr(model, "input_spec", None)
    if isinstance(spec, InputSpec):
        return spec
    multiple = getattr(model, "size_multiple", None)
    if multiple is None:
        return None
    return InputSpec(
        channels=int(getattr(model, "in_channels", 3)), multiple=int(multiple),
        min_size=int(getattr(model, "min_size", multiple) or multiple),
    )


def resized_side(model: nn.Module) -> Optional[int]:
    """The one side a segmentation model on a fixed-size encoder takes (timm's EfficientFormer-like models), to
    which prediction resizes its images; ``None`` for every other model.

    Example:
        >>> import encdec
        >>> resized_side(encdec.unet(widths=(8, 16, 32, 64, 128))) is None
        True
    """
    spec = input_spec_of(model)
    return spec.fixed if spec is not None and getattr(model, "decoder", None) is not None else None
