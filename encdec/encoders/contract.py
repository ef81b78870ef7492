"""The encoder contract every decoder relies on, and the two adaptations every backbone may need.

An encoder is an ``nn.Module`` whose forward returns its feature maps from high to low resolution, with
attributes that describe them without running it (:class:`Encoder`):

* ``name``: what to call it in messages (``"resnet34"``, ``"timm:convnext_tiny"``);
* ``out_channels``: the channels of each map;
* ``strides``: how many input pixels one position of each map spans (2 means half the input's height and width);
* ``left_out``: the layers a depth limit did not build (their entries are left out of weight files);
* ``size_multiple`` and ``fixed_size``: the input sides the encoder itself takes (1 and ``None``: any).

``adapt_input_channels`` changes a backbone's first convolution for images of other than three channels, and
``dilate`` trades the last downsampling steps for dilation (the encoders of DeepLab), both the way
segmentation_models_pytorch does, so that models and checkpoints behave the same.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Protocol, Sequence, runtime_checkable

import torch
from torch import Tensor, nn

__all__ = ["Encoder", "EncoderError", "adapt_input_channels", "check_pyramid", "dilate", "maps_within_depth",
           "pyramid_stride"]

_PROBE = 64  # side of the probe image used to find each layer's stride; stride 32 gives a 2x2 map


class EncoderError(ValueError):
    """An encoder that cannot be built, or cannot feed the decoder asked for; the message says what would work.

    Example:
        >>> issubclass(EncoderError, ValueError)
        True
    """


@runtime_checkable
class Encoder(Protocol):
    """What every encoder declares, which decoders and models read instead of probing: torchvision's, timm's
    (CNNs and Vision Transformers), the Mix Transformers and the course encoders all satisfy it.

    Attributes:
        name: What to call the encoder in messages.
        out_channels: Channels of each map, high to low resolution.
        strides: Stride of each map.
        left_out: Names of the layers a depth limit did not build, relative to the encoder (their checkpoint
            entries are dropped, not refused).
        size_multiple: Input sides must be divisible by this for the encoder itself (decoders add their own).
        fixed_size: The one input side the encoder takes, or ``None``.

    Example:
        >>> from encdec.encoders import create_encoder
        >>> isinstance(create_encoder("resnet18"), Encoder), isinstance(nn.Conv2d(3, 3, 1), Encoder)
        (True, False)
    """

    name: str
    out_channels: List[int]
    strides: List[int]
    left_out: Sequence[str]
    size_multiple: int
    fixed_size: Optional[int]

    def __call__(self, x: Tensor) -> List[Tensor]:
        """The feature maps of ``x``, high to low resolution."""
        ...


def adapt_input_channels(module: nn.Module, in_channels: int, *, pretrained: bool) -> None:
    """Rebuild the first three-channel convolution of ``module`` for ``in_channels`` input channels, in place.

    With pretrained RGB weights the new kernel is made from them: one channel gets their sum over the colour
    channels; two or more channels repeat the colour kernels cyclically, scaled by ``3 / in_channels`` so the
    response to an image of equal channels stays the same. Without pretrained weights the layer is initialised
    afresh. This is segmentation_models_pytorch's rule, so smp checkpoints of such models load unchanged.

    Args:
        module: A backbone whose first convolution takes three channels.
        in_channels: The channels of the images the model will take.
        pretrained: Whether the convolution holds weights learned on RGB images.

    Raises:
        EncoderError: ``module`` has no convolution taking three channels.

    Example:
        >>> conv = nn.Sequential(nn.Conv2d(3, 8, 3))
        >>> adapt_input_channels(conv, 1, pretrained=False)
        >>> conv[0].weight.shape
        torch.Size([8, 1, 3, 3])
    """
    if in_channels == 3:
        return
    first = next((m for m in module.modules() if isinstance(m, nn.Conv2d) and m.in_channels == 3), None)
    if first is None:
        raise EncoderError(f"{type(module).__name__} has no convolution taking 3 channels to adapt to {in_channels}")
    weight = first.weight.detach()
    first.in_channels = in_channels
    shape = (first.out_channels, in_channels // first.groups, *first.kernel_size)
    if not pretrained:
        first.weight = nn.Parameter(torch.empty(shape, dtype=weight.dtype, device=weight.device))
        first.reset_parameters()
    elif in_channels == 1:
        first.weight = nn.Parameter(weight.sum(1, keepdim=True))
    else:
        index = torch.arange(in_channels, device=weight.device) % 3
        first.weight = nn.Parameter(weight[:, index] * (3 / in_channels))


def _layer_strides(module: nn.Module, kinds: tuple) -> Dict[nn.Module, int]:
    """The stride of each layer's output relative to the input, found by running a probe image through hooks."""
    found: Dict[nn.Module, int] = {}

    def record(layer: nn.Module, args: tuple, output: Tensor) -> None:
        if isinstance(output, Tensor) and output.dim() == 4 and output.shape[-1]:
            found[layer] = max(found.get(layer, 0), _PROBE // int(output.shape[-1]))

    handles = [m.register_forward_hook(record) for m in module.modules() if isinstance(m, kinds)]
    parameter = next(module.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    channels = next((m.in_channels for m in module.modules() if isinstance(m, nn.Conv2d)), 3)
    was_training = module.training
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(1, channels, _PROBE, _PROBE, device=device))
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    return found


_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def dilate(encoder: nn.Module, output_stride: int, *, name: str = "encoder") -> None:
    """Keep ``encoder``'s maps at most ``output_stride`` coarse by replacing strides with dilation, in place.

    Every convolution whose output would be coarser than ``output_stride`` gets stride 1 and dilation
    ``its stride / output_stride`` (padding scaled with it), as segmentation_models_pytorch does for DeepLab;
    ``encoder.strides`` is updated. Encoders that downsample by pooling past ``output_stride`` are refused.

    Args:
        encoder: An encoder following the contract (``out_channels``, ``strides``).
        output_stride: 8 or 16 (or the encoder's own final stride, which changes nothing).
        name: The encoder's name, for messages.

    Raises:
        EncoderError: ``output_stride`` is not a power of two, or the encoder downsamples by pooling beyond it.

    Example:
        >>> from encdec.encoders import create_encoder
        >>> enc = create_encoder("resnet18")
        >>> dilate(enc, 16)
        >>> enc.strides, [f.shape[-1] for f in enc(torch.zeros(1, 3, 64, 64))]
        ([2, 4, 8, 16, 16], [32, 16, 8, 4, 4])
    """
    if output_stride < 1 or output_stride & (output_stride - 1):
        raise EncoderError(f"output_stride must be a power of two such as 8 or 16, got {output_stride}")
    if max(encoder.strides) <= output_stride:
        return
    strides = _layer_strides(encoder, (nn.Conv2d, *_POOLS))
    pools = [layer for layer, stride in strides.items() if isinstance(layer, _POOLS) and stride > output_stride
             and _stride_of(layer) > 1]
    if pools:
        raise EncoderError(
            f"{name} downsamples by pooling beyond stride {output_stride} ({type(pools[0]).__name__}), so it cannot "
            f"run dilated; use an encoder that downsamples by convolution (resnet*, efficientnet*, convnext*, "
            f"regnet*, mobilenet*) or output stride {max(encoder.strides)}"
        )
    for layer, stride in strides.items():
        if isinstance(layer, nn.Conv2d) and stride > output_stride:
            rate = stride // output_stride
            layer.stride = (1, 1)
            layer.dilation = (rate, rate)
            layer.padding = tuple(rate * (k - 1) // 2 for k in layer.kernel_size)  # keeps the size
    encoder.strides = [min(s, output_stride) for s in encoder.strides]


def _stride_of(layer: nn.Module) -> int:
    stride = layer.stride
    return int(max(stride) if isinstance(stride, (tuple, list)) else stride)


def check_pyramid(strides: Sequence[int], channels: Sequence[int], *, name: str, decoder: str,
                  levels: Optional[int] = None) -> List[int]:
    """Check that an encoder's maps form a pyramid a decoder can climb: each map half the size of the one before.

    Args:
        strides: The encoder's ``strides``.
        channels: The encoder's ``out_channels``.
        name: The encoder's name, for messages.
        decoder: The decoder's name, for messages.
        levels: How many of the last maps the decoder uses (all by default).

    Returns:
        The strides of the maps the decoder uses.

    Raises:
        EncoderError: Too few maps, or strides that do not double from one map to the next.

    Example:
        >>> check_pyramid([2, 4, 8, 16, 32], [64, 64, 128, 256, 512], name="resnet18", decoder="fpn", levels=4)
        [4, 8, 16, 32]
    """
    strides = list(strides)
    if len(strides) != len(channels):
        raise EncoderError(f"{name} declares {len(channels)} channel counts for {len(strides)} feature maps")
    used = strides if levels is None else strides[-levels:]
    if levels is not None and len(strides) < levels:
        raise EncoderError(f"{decoder} needs {levels} feature maps; {name} gives {len(strides)} (strides {strides})")
    doubling = all(b == 2 * a for a, b in zip(used, used[1:])) and all(math.log2(s).is_integer() for s in used)
    if not doubling:
        raise EncoderError(
            f"{decoder} needs feature maps whose strides double from one to the next (e.g. 4, 8, 16, 32); {name} "
            f"gives strides {strides}"
        )
    return used


def pyramid_stride(strides: Sequence[int]) -> int:
    """The coarsest stride of an encoder: input sides must be divisible by it.

    Example:
        >>> pyramid_stride([2, 4, 8, 16, 32])
        32
    """
    return int(max(strides))


def maps_within_depth(strides: Sequence[int], depth: int, *, name: str) -> int:
    """How many of an encoder's maps lie within ``depth`` halvings of the input (stride at most ``2 ** depth``):
    segmentation_models_pytorch's ``encoder_depth``.

    Raises:
        EncoderError: ``depth`` is not a positive integer, or no map is that fine.

    Example:
        >>> maps_within_depth([2, 4, 8, 16, 32], 3, name="resnet34")
        3
        >>> maps_within_depth([4, 8, 16, 32], 3, name="convnext_tiny")
        2
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise EncoderError(f"depth must be a positive number of halvings such as 3 or 5, got {depth!r}")
    count = sum(1 for s in strides if s <= 2**depth)
    if count == 0:
        raise EncoderError(f"{name} has no feature map within depth {depth} (stride {2**depth} or finer); its "
                           f"strides are {list(strides)}")
    return count
