"""Reusable building blocks shared by every encdec model.

Each quirk of a reference architecture is a named argument here, never a copied block: the two course kinds of
bottleneck are ``Bottleneck(kind="course_cifar")`` and ``Bottleneck(kind="course_voc")``, the Pet U-Net's
bias-free, affine-free double convolution is ``DoubleConv(bias=False, affine=False)``, and so on.
"""

from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ConvBNAct",
    "DoubleConv",
    "BasicBlock",
    "Bottleneck",
    "DecoderBlock",
    "SCSE",
    "channel_gate",
    "ResidualMLPBlock",
    "SeparableConv2d",
    "ClassificationHead",
    "classification_head",
]


class ConvBNAct(nn.Sequential):
    """Conv2d, BatchNorm2d and an optional ReLU, indexed ``0``, ``1`` (and ``2``) like the references.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Square kernel size.
        stride: Convolution stride.
        padding: Zero padding; ``None`` keeps the spatial size for odd kernels (``kernel_size // 2``).
        bias: Whether the convolution has a bias (the course models do, torchvision's do not).
        act: Append a ReLU.
        affine: Whether the BatchNorm has a learnable scale and shift.
        norm: ``False`` puts an ``Identity`` where the BatchNorm would be (the indices stay the same), as
            segmentation_models_pytorch does where there is too little to normalise.

    Example:
        >>> block = ConvBNAct(3, 16, 3)
        >>> block(torch.zeros(1, 3, 8, 8)).shape
        torch.Size([1, 16, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: Optional[int] = None,
        *,
        bias: bool = True,
        act: bool = True,
        affine: bool = True,
        norm: bool = True,
    ) -> None:
        padding = kernel_size // 2 if padding is None else padding
        layers: List[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=bias),
            nn.BatchNorm2d(out_channels, affine=affine) if norm else nn.Identity(),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DoubleConv(nn.Sequential):
    """Two 3x3 ``ConvBNAct`` layers: the U-Net unit, indexed ``0``-``5`` (convs at 0 and 3, norms at 1 and 4).

    Args:
        in_channels: Input channels.
        out_channels: Output channels of both convolutions.
        mid_channels: Channels between the two convolutions (default ``out_channels``).
        bias: Convolution bias. ``True`` for the VOC U-Net, ``False`` for the Pet models.
        affine: BatchNorm scale and shift. ``False`` reproduces the Pet models' ``BatchNorm2d(affine=False)``,
            which carries only running statistics.
        norm: ``False`` puts an ``Identity`` where each BatchNorm would be (the indices stay the same).

    Example:
        >>> DoubleConv(3, 8, bias=False, affine=False)(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 8, 16, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mid_channels: Optional[int] = None,
        *,
        bias: bool = True,
        affine: bool = True,
        norm: bool = True,
    ) -> None:
        mid = out_channels if mid_channels is None else mid_channels
        first = ConvBNAct(in_channels, mid, 3, bias=bias, affine=affine, norm=norm)
        second = ConvBNAct(mid, out_channels, 3, bias=bias, affine=affine, norm=norm)
        super().__init__(*first, *second)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution; a projection shortcut is added when the stride is not 1 or
            the channel count changes.
        kind: ``"torchvision"``: bias-free convolutions, no ReLU before the sum, as in
            ``torchvision.models.resnet``. ``"course"``: the Pet ResNet34-U-Net's block, with convolution
            biases and a ReLU after the second BatchNorm as well as after the sum.

    Example:
        >>> BasicBlock(64, 128, stride=2)(torch.zeros(1, 64, 16, 16)).shape
        torch.Size([1, 128, 8, 8])
    """

    kinds = ("torchvision", "course")

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, *, kind: str = "torchvision") -> None:
        super().__init__()
        if kind not in self.kinds:
            raise ValueError(f"BasicBlock kind must be one of {self.kinds}, got {kind!r}")
        course = kind == "course"
        self.conv1 = ConvBNAct(in_channels, out_channels, 3, stride, bias=course)
        self.conv2 = ConvBNAct(out_channels, out_channels, 3, bias=course, act=course)
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBNAct(in_channels, out_channels, 1, stride, 0, bias=course, act=False)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(self.conv2(self.conv1(x)) + identity, inplace=True)  # the sum is a fresh tensor


# Per kind: conv bias, ReLU after the 1x1/3x3 inner convs, ReLU after the last conv (and on the shortcut),
# stride on the 3x3 (else on the first 1x1), projection in every block, ReLU after the sum, and whether a block
# of stride 1 ignores ``mid_channels`` (its inner convolutions as wide as its output).
_BOTTLENECK_KINDS = {
    "torchvision": dict(bias=False, inner_act=True, last_act=False, stride_3x3=True, always_project=False,
                        sum_act=True, wide_unstrided=False),
    "course_cifar": dict(bias=True, inner_act=True, last_act=True, stride_3x3=False, always_project=True,
                         sum_act=False, wide_unstrided=False),
    "course_voc": dict(bias=True, inner_act=False, last_act=False, stride_3x3=False, always_project=True,
                       sum_act=True, wide_unstrided=True),
    "course_voc_narrow": dict(bias=True, inner_act=False, last_act=False, stride_3x3=False, always_project=True,
                              sum_act=True, wide_unstrided=False),
}


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 residual block (ResNet-50), in the torchvision form or either course form.

    Args:
        in_channels: Input channels.
        mid_channels: Channels of the inner convolutions (ignored by a ``"course_voc"`` block of stride 1).
        out_channels: Output channels.
        stride: Spatial stride of the block.
        kind: ``"torchvision"``: torchvision's ResNet-50 v1.5 block (bias-free, stride on the 3x3, projection
            only when shapes change, ReLU after the sum). ``"course_cifar"``: the CIFAR-10 ``ResNet50_layer4``
            block: every convolution, including the last and the shortcut, is followed by BatchNorm **and**
            ReLU, and there is no ReLU after the sum. ``"course_voc"``: the VOC ResNet-50 U-Net block as its
            listing prints it: convolutions followed by BatchNorm only, ReLU after the sum, and a block of stride 1
            ignores ``mid_channels`` (``conv1x1(in, out)``, ``conv3x3(out, out)``, ``conv1x1(out, out)``), so its
            inner convolutions are as wide as its output. ``"course_voc_narrow"``: the same block with
            ``mid_channels`` used at every stride (the layout encdec 0.1 built). The course kinds put the stride
            on the first 1x1 convolution and, reproducing the reference's always-true ``x.size() is not
            out.size()`` test, apply the 1x1 projection shortcut in every block, even when shapes match.

    Example:
        >>> Bottleneck(64, 64, 256, kind="course_voc").conv2[0].weight.shape[0]  # stride 1: as wide as the output
        256
        >>> Bottleneck(64, 64, 256, stride=2, kind="course_voc").conv2[0].weight.shape[0]
        64
    """

    def __init__(
        self,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        kind: str = "torchvision",
    ) -> None:
        super().__init__()
        if kind not in _BOTTLENECK_KINDS:
            raise ValueError(f"Bottleneck kind must be one of {tuple(_BOTTLENECK_KINDS)}, got {kind!r}")
        k = _BOTTLENECK_KINDS[kind]
        bias, inner_act = k["bias"], k["inner_act"]
        s1, s3 = (1, stride) if k["stride_3x3"] else (stride, 1)
        if k["wide_unstrided"] and stride == 1:
            mid_channels = out_channels
        self.conv1 = ConvBNAct(in_channels, mid_channels, 1, s1, 0, bias=bias, act=inner_act)
        self.conv2 = ConvBNAct(mid_channels, mid_channels, 3, s3, 1, bias=bias, act=inner_act)
        self.conv3 = ConvBNAct(mid_channels, out_channels, 1, 1, 0, bias=bias, act=k["last_act"])
        self.shortcut: Optional[nn.Module] = None
        if k["always_project"] or stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBNAct(in_channels, out_channels, 1, stride, 0, bias=bias, act=k["last_act"])
        self.sum_act = k["sum_act"]

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.conv3(self.conv2(self.conv1(x))) + identity
        return F.relu(out, inplace=True) if self.sum_act else out


class DecoderBlock(nn.Module):
    """Upsample by 2, concatenate a skip connection, apply a ``DoubleConv``.

    Args:
        in_channels: Channels of the tensor coming up the decoder.
        skip_channels: Channels of the skip connection (0 for a block without one).
        out_channels: Output channels.
        upsample: ``"bilinear"`` (align_corners=True, as the reference U-Nets), ``"nearest"``, or
            ``"transposed"`` (a learned ``ConvTranspose2d(kernel 2, stride 2)`` stored as ``up``).
        align_corners: For ``"bilinear"``: ``False`` samples at pixel centres, as segmentation_models_pytorch's
            ``decoder_interpolation="bilinear"`` does.
        up_channels: Channels after a transposed upsampling (default ``out_channels``); interpolation keeps
            ``in_channels``.
        skip_first: Concatenate ``(skip, upsampled)`` instead of ``(upsampled, skip)``; the order is baked
            into a checkpoint's weights.
        pad_to_skip: Zero-pad the upsampled tensor to the skip's size (the Pet U-Net does this so odd sizes
            work).
        bias: Convolution bias of the ``DoubleConv``.
        affine: BatchNorm affine parameters of the ``DoubleConv``.
        norm: ``False`` puts an ``Identity`` where the ``DoubleConv``'s BatchNorms would be (smp's
            ``decoder_use_norm=False``, whose convolutions then have a bias).
        attention: ``"scse"`` adds concurrent spatial and channel squeeze-and-excitation (``SCSE``) after the
            concatenation (``attention1``) and after the ``DoubleConv`` (``attention2``), as smp's
            ``decoder_attention_type="scse"``.
        attend_without_skip: Apply ``attention1`` to the upsampled tensor when no skip comes (smp does in a block
            whose encoder map is missing, where it concatenates an empty one).

    Example:
        >>> block = DecoderBlock(64, 32, 32, upsample="transposed")
        >>> block(torch.zeros(1, 64, 8, 8), torch.zeros(1, 32, 16, 16)).shape
        torch.Size([1, 32, 16, 16])
    """

    upsample_modes = ("bilinear", "nearest", "transposed")

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        *,
        upsample: str = "bilinear",
        up_channels: Optional[int] = None,
        skip_first: bool = False,
        pad_to_skip: bool = False,
        bias: bool = True,
        affine: bool = True,
        align_corners: bool = True,
        norm: bool = True,
        attention: Optional[str] = None,
        attend_without_skip: bool = False,
    ) -> None:
        super().__init__()
        if upsample not in self.upsample_modes:
            raise ValueError(f"upsample must be one of {self.upsample_modes}, got {upsample!r}")
        if attention not in (None, "scse"):
            raise ValueError(f"attention must be None or 'scse', got {attention!r}")
        self.mode = upsample
        self.align_corners = align_corners
        self.attend_without_skip = attend_without_skip
        self.skip_first = skip_first
        self.pad_to_skip = pad_to_skip
        if upsample == "transposed":
            up_channels = out_channels if up_channels is None else up_channels
            self.up: Optional[nn.Module] = nn.ConvTranspose2d(in_channels, up_channels, 2, stride=2)
        else:
            up_channels = in_channels
            self.up = None
        # built without a skip too (never run then), as smp builds it, so that its checkpoints load
        self.attention1 = SCSE(up_channels + skip_channels) if attention else None
        self.conv = DoubleConv(up_channels + skip_channels, out_channels, bias=bias or not norm, affine=affine,
                               norm=norm)
        self.attention2 = SCSE(out_channels) if attention else None

    def upsample(self, x: Tensor) -> Tensor:
        if self.up is not None:
            return self.up(x)
        if self.mode == "bilinear":
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=self.align_corners)
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, x: Tensor, skip: Optional[Tensor] = None) -> Tensor:
        x = self.upsample(x)
        if skip is not None:
            if self.pad_to_skip:
                dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
                if dy or dx:
                    x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            x = torch.cat([skip, x] if self.skip_first else [x, skip], dim=1)
        if self.attention1 is not None and (skip is not None or self.attend_without_skip):
            x = self.attention1(x)
        x = self.conv(x)
        return x if self.attention2 is None else self.attention2(x)


class SCSE(nn.Module):
    """Concurrent spatial and channel squeeze-and-excitation (Roy et al., 2018): ``x * cSE(x) + x * sSE(x)``.

    The channel gate ``cSE`` pools each channel to one value, squeezes the channels by ``reduction`` (1x1 conv,
    ReLU), expands them back (1x1 conv) and takes a sigmoid; the spatial gate ``sSE`` is a 1x1 convolution to one
    map and a sigmoid. The modules are numbered as segmentation_models_pytorch numbers them (``cSE.1``, ``cSE.3``,
    ``sSE.0``), so its weights load.

    Args:
        channels: Channels of the input (and output).
        reduction: Channel squeeze factor of ``cSE``.

    Example:
        >>> SCSE(32)(torch.zeros(1, 32, 4, 4)).shape
        torch.Size([1, 32, 4, 4])
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        squeezed = channels // reduction
        if squeezed < 1:
            raise ValueError(f"SCSE needs at least {reduction} channels to squeeze by {reduction}, got {channels}")
        self.cSE = channel_gate(channels, squeezed)
        self.sSE = nn.Sequential(nn.Conv2d(channels, 1, 1), nn.Sigmoid())

    def forward(self, x: Tensor) -> Tensor:
        return x * self.cSE(x) + x * self.sSE(x)


def channel_gate(channels: int, squeezed: int) -> nn.Sequential:
    """A squeeze-and-excitation channel gate (Hu et al., 2018): global average pooling, a 1x1 conv to ``squeezed``
    channels, ReLU, a 1x1 conv back to ``channels``, sigmoid, indexed ``0``-``4`` (the weights at ``1`` and ``3``).

    Example:
        >>> channel_gate(32, 2)(torch.zeros(1, 32, 4, 4)).shape
        torch.Size([1, 32, 1, 1])
    """
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, squeezed, 1), nn.ReLU(inplace=True),
                         nn.Conv2d(squeezed, channels, 1), nn.Sigmoid())


class ResidualMLPBlock(nn.Module):
    """A residual fully-connected block that halves the feature count (the ``resfcn18`` unit).

    ``fc1`` maps ``f -> f/2`` and ``fc2`` ``f/2 -> f/2``, each followed by BatchNorm1d (ReLU after the first);
    the shortcut is ``AvgPool1d(3, 2, 1)`` over the feature axis, and the output is ``ReLU(main + shortcut)``.

    Args:
        features: Input features (even).

    Example:
        >>> ResidualMLPBlock(64)(torch.zeros(4, 64)).shape
        torch.Size([4, 32])
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        if features % 2:
            raise ValueError(f"ResidualMLPBlock needs an even feature count, got {features}")
        half = features // 2
        self.fc1 = nn.Linear(features, half)
        self.bn1 = nn.BatchNorm1d(half)
        self.fc2 = nn.Linear(half, half)
        self.bn2 = nn.BatchNorm1d(half)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.fc2(F.relu(self.bn1(self.fc1(x)), inplace=True)))
        return F.relu(out + feature_avg_pool(x), inplace=True)


def feature_avg_pool(x: Tensor) -> Tensor:
    """Average-pool a ``(N, F)`` tensor along its feature axis with kernel 3, stride 2, padding 1 (``F -> F/2``).

    Example:
        >>> feature_avg_pool(torch.ones(2, 8)).shape
        torch.Size([2, 4])
    """
    return F.avg_pool1d(x.unsqueeze(1), 3, 2, 1).squeeze(1)


class SeparableConv2d(nn.Sequential):
    """A depthwise convolution (one filter per channel, no bias) followed by a 1x1 pointwise one, indexed ``0``
    and ``1`` (DeepLabV3+'s separable convolution).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Depthwise kernel size.
        padding: Depthwise padding.
        dilation: Depthwise dilation.
        bias: Bias of the pointwise convolution.

    Example:
        >>> SeparableConv2d(8, 16, 3, padding=2, dilation=2)(torch.zeros(1, 8, 9, 9)).shape
        torch.Size([1, 16, 9, 9])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, *, padding: int = 1,
                 dilation: int = 1, bias: bool = True) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=padding, dilation=dilation,
                      groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias),
        )


#: The activations an auxiliary classification head may end in (segmentation_models_pytorch's names).
CLASSIFICATION_ACTIVATIONS = {None: nn.Identity, "identity": nn.Identity, "sigmoid": nn.Sigmoid,
                              "softmax": lambda: nn.Softmax(dim=1)}
_AUX_KEYS = ("classes", "pooling", "dropout", "activation")


class ClassificationHead(nn.Sequential):
    """An image-level head on a feature map: global average (or max) pooling, flatten, dropout, a linear layer to
    ``classes`` and an optional activation, indexed ``0``-``4`` as segmentation_models_pytorch's auxiliary head
    (``aux_params``), so its checkpoints load.

    Args:
        in_channels: Channels of the map.
        classes: Outputs.
        pooling: ``"avg"`` or ``"max"``.
        dropout: Dropout probability before the linear layer (0 or ``None``: none).
        activation: ``None``, ``"identity"``, ``"sigmoid"`` or ``"softmax"``.

    Raises:
        ValueError: A value outside those, named.

    Example:
        >>> ClassificationHead(16, 3)(torch.zeros(2, 16, 4, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(self, in_channels: int, classes: int, pooling: str = "avg", dropout: Optional[float] = 0.2,
                 activation: Optional[str] = None) -> None:
        if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
            raise ValueError(f"aux_params classes must be a positive whole number, got {classes!r}")
        if pooling not in ("avg", "max"):
            raise ValueError(f"aux_params pooling must be 'avg' or 'max', got {pooling!r}")
        if dropout is not None and not (isinstance(dropout, (int, float)) and 0 <= dropout < 1):
            raise ValueError(f"aux_params dropout must be a probability in [0, 1), got {dropout!r}")
        if not isinstance(activation, (str, type(None))) or activation not in CLASSIFICATION_ACTIVATIONS:
            raise ValueError(f"aux_params activation={activation!r} is not supported: use None, 'identity', "
                             "'sigmoid' or 'softmax'")
        super().__init__(
            nn.AdaptiveAvgPool2d(1) if pooling == "avg" else nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
            nn.Dropout(dropout) if dropout else nn.Identity(),
            nn.Linear(in_channels, classes),
            CLASSIFICATION_ACTIVATIONS[activation](),
        )
        self.classes = classes
        self.activation = activation


def classification_head(in_channels: int, aux_params: Optional[dict]) -> Optional[ClassificationHead]:
    """The :class:`ClassificationHead` that smp's ``aux_params`` describe (``None`` for none); unknown keys are
    refused by name.

    Example:
        >>> classification_head(8, {"classes": 2, "pooling": "max"})[0]
        AdaptiveMaxPool2d(output_size=1)
    """
    if aux_params is None:
        return None
    if not isinstance(aux_params, dict) or "classes" not in aux_params:
        raise ValueError(f"aux_params must be a dict with at least 'classes', got {aux_params!r}")
    unknown = sorted(set(aux_params) - set(_AUX_KEYS))
    if unknown:
        raise ValueError(f"aux_params has unknown keys {', '.join(unknown)}; it takes {', '.join(_AUX_KEYS)}")
    return ClassificationHead(in_channels, **aux_params)
