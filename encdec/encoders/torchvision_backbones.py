"""Encoders from torchvision's classification models: the models themselves, run up to their last feature map.

Each backbone is torchvision's own module (built with ``weights=None``; nothing is downloaded) with its
classifier left out. Its modules keep torchvision's names, so a torchvision ImageNet file such as
``resnet34-b627a593.pth`` loads into it directly, and so do the encoder entries of segmentation_models_pytorch
checkpoints on the same architectures. The feature maps are, for each stride, the output of the last module of the
network's feature body that runs at that stride; ``BACKBONES`` declares them with their channels and strides
(``tests/test_encoders.py`` and ``benchmarks`` check them against ``torchvision.models.feature_extraction``).
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import os
import re
from typing import Dict, Iterator, List, Optional, Tuple, Union

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models import regnet as _tv_regnet

from ..weights import WeightsError, load_state_dict, read_state_dict
from .contract import EncoderError, adapt_input_channels, dilate, maps_within_depth

__all__ = [
    "BACKBONES", "TorchvisionEncoder", "list_torchvision_backbones", "load_torchvision_weights", "torchvision_backbone",
    "torchvision_dilation",
]

PathLike = Union[str, os.PathLike]

# Family (name prefixes) -> the modules of the network's feature body, in the order its forward runs them;
# "x.*" stands for the children of x.
_BODIES: Tuple[Tuple[Tuple[str, ...], Tuple[str, ...]], ...] = (
    (("resnet", "resnext", "wide_resnet"), ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")),
    (("efficientnet", "mobilenet", "convnext", "vgg", "densenet"), ("features.*",)),
    (("regnet",), ("stem", "trunk_output.*")),
    (("mnasnet",), ("layers.*",)),
    (("shufflenet",), ("conv1", "maxpool", "stage2", "stage3", "stage4", "conv5")),
)

# Classifier modules of the torchvision files, left out of the encoder.
_HEADS = ("fc.", "classifier.")

#: torchvision backbone -> (the modules whose outputs are the feature maps, their channels, their strides).
BACKBONES: Dict[str, Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = {
    "convnext_base": ("features.1 features.3 features.5 features.7", (128, 256, 512, 1024), (4, 8, 16, 32)),
    "convnext_large": ("features.1 features.3 features.5 features.7", (192, 384, 768, 1536), (4, 8, 16, 32)),
    "convnext_small": ("features.1 features.3 features.5 features.7", (96, 192, 384, 768), (4, 8, 16, 32)),
    "convnext_tiny": ("features.1 features.3 features.5 features.7", (96, 192, 384, 768), (4, 8, 16, 32)),
    "densenet121": ("features.relu0 features.denseblock1 features.denseblock2 features.denseblock3 features.norm5",
                    (64, 256, 512, 1024, 1024), (2, 4, 8, 16, 32)),
    "densenet161": ("features.relu0 features.denseblock1 features.denseblock2 features.denseblock3 features.norm5",
                    (96, 384, 768, 2112, 2208), (2, 4, 8, 16, 32)),
    "densenet169": ("features.relu0 features.denseblock1 features.denseblock2 features.denseblock3 features.norm5",
                    (64, 256, 512, 1280, 1664), (2, 4, 8, 16, 32)),
    "densenet201": ("features.relu0 features.denseblock1 features.denseblock2 features.denseblock3 features.norm5",
                    (64, 256, 512, 1792, 1920), (2, 4, 8, 16, 32)),
    "efficientnet_b0": ("features.1 features.2 features.3 features.5 features.8",
                        (16, 24, 40, 112, 1280), (2, 4, 8, 16, 32)),
    "efficientnet_b1": ("features.1 features.2 features.3 features.5 features.8",
                        (16, 24, 40, 112, 1280), (2, 4, 8, 16, 32)),
    "efficientnet_b2": ("features.1 features.2 features.3 features.5 features.8",
                        (16, 24, 48, 120, 1408), (2, 4, 8, 16, 32)),
    "efficientnet_b3": ("features.1 features.2 features.3 features.5 features.8",
                        (24, 32, 48, 136, 1536), (2, 4, 8, 16, 32)),
    "efficientnet_b4": ("features.1 features.2 features.3 features.5 features.8",
                        (24, 32, 56, 160, 1792), (2, 4, 8, 16, 32)),
    "efficientnet_b5": ("features.1 features.2 features.3 features.5 features.8",
                        (24, 40, 64, 176, 2048), (2, 4, 8, 16, 32)),
    "efficientnet_b6": ("features.1 features.2 features.3 features.5 features.8",
                        (32, 40, 72, 200, 2304), (2, 4, 8, 16, 32)),
    "efficientnet_b7": ("features.1 features.2 features.3 features.5 features.8",
                        (32, 48, 80, 224, 2560), (2, 4, 8, 16, 32)),
    "efficientnet_v2_l": ("features.1 features.2 features.3 features.5 features.8",
                          (32, 64, 96, 224, 1280), (2, 4, 8, 16, 32)),
    "efficientnet_v2_m": ("features.1 features.2 features.3 features.5 features.8",
                          (24, 48, 80, 176, 1280), (2, 4, 8, 16, 32)),
    "efficientnet_v2_s": ("features.1 features.2 features.3 features.5 features.7",
                          (24, 48, 64, 160, 1280), (2, 4, 8, 16, 32)),
    "mnasnet0_5": ("layers.7 layers.8 layers.9 layers.11 layers.16", (8, 16, 24, 48, 1280), (2, 4, 8, 16, 32)),
    "mnasnet0_75": ("layers.7 layers.8 layers.9 layers.11 layers.16", (16, 24, 32, 72, 1280), (2, 4, 8, 16, 32)),
    "mnasnet1_0": ("layers.7 layers.8 layers.9 layers.11 layers.16", (16, 24, 40, 96, 1280), (2, 4, 8, 16, 32)),
    "mnasnet1_3": ("layers.7 layers.8 layers.9 layers.11 layers.16", (24, 32, 56, 128, 1280), (2, 4, 8, 16, 32)),
    "mobilenet_v2": ("features.1 features.3 features.6 features.13 features.18",
                     (16, 24, 32, 96, 1280), (2, 4, 8, 16, 32)),
    "mobilenet_v3_large": ("features.1 features.3 features.6 features.12 features.16",
                           (16, 24, 40, 112, 960), (2, 4, 8, 16, 32)),
    "mobilenet_v3_small": ("features.0 features.1 features.3 features.8 features.12",
                           (16, 16, 24, 48, 576), (2, 4, 8, 16, 32)),
    "regnet_x_16gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                      (32, 256, 512, 896, 2048), (2, 4, 8, 16, 32)),
    "regnet_x_1_6gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 72, 168, 408, 912), (2, 4, 8, 16, 32)),
    "regnet_x_32gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                      (32, 336, 672, 1344, 2520), (2, 4, 8, 16, 32)),
    "regnet_x_3_2gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 96, 192, 432, 1008), (2, 4, 8, 16, 32)),
    "regnet_x_400mf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 32, 64, 160, 400), (2, 4, 8, 16, 32)),
    "regnet_x_800mf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 64, 128, 288, 672), (2, 4, 8, 16, 32)),
    "regnet_x_8gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                     (32, 80, 240, 720, 1920), (2, 4, 8, 16, 32)),
    "regnet_y_128gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 528, 1056, 2904, 7392), (2, 4, 8, 16, 32)),
    "regnet_y_16gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                      (32, 224, 448, 1232, 3024), (2, 4, 8, 16, 32)),
    "regnet_y_1_6gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 48, 120, 336, 888), (2, 4, 8, 16, 32)),
    "regnet_y_32gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                      (32, 232, 696, 1392, 3712), (2, 4, 8, 16, 32)),
    "regnet_y_3_2gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 72, 216, 576, 1512), (2, 4, 8, 16, 32)),
    "regnet_y_400mf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 48, 104, 208, 440), (2, 4, 8, 16, 32)),
    "regnet_y_800mf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                       (32, 64, 144, 320, 784), (2, 4, 8, 16, 32)),
    "regnet_y_8gf": ("stem trunk_output.block1 trunk_output.block2 trunk_output.block3 trunk_output.block4",
                     (32, 224, 448, 896, 2016), (2, 4, 8, 16, 32)),
    "resnet101": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "resnet152": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "resnet18": ("relu layer1 layer2 layer3 layer4", (64, 64, 128, 256, 512), (2, 4, 8, 16, 32)),
    "resnet34": ("relu layer1 layer2 layer3 layer4", (64, 64, 128, 256, 512), (2, 4, 8, 16, 32)),
    "resnet50": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "resnext101_32x8d": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "resnext101_64x4d": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "resnext50_32x4d": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "shufflenet_v2_x0_5": ("conv1 maxpool stage2 stage3 conv5", (24, 24, 48, 96, 1024), (2, 4, 8, 16, 32)),
    "shufflenet_v2_x1_0": ("conv1 maxpool stage2 stage3 conv5", (24, 24, 116, 232, 1024), (2, 4, 8, 16, 32)),
    "shufflenet_v2_x1_5": ("conv1 maxpool stage2 stage3 conv5", (24, 24, 176, 352, 1024), (2, 4, 8, 16, 32)),
    "shufflenet_v2_x2_0": ("conv1 maxpool stage2 stage3 conv5", (24, 24, 244, 488, 2048), (2, 4, 8, 16, 32)),
    "vgg11": ("features.1 features.4 features.9 features.14 features.19 features.20",
              (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg11_bn": ("features.2 features.6 features.13 features.20 features.27 features.28",
                 (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg13": ("features.3 features.8 features.13 features.18 features.23 features.24",
              (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg13_bn": ("features.5 features.12 features.19 features.26 features.33 features.34",
                 (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg16": ("features.3 features.8 features.15 features.22 features.29 features.30",
              (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg16_bn": ("features.5 features.12 features.22 features.32 features.42 features.43",
                 (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg19": ("features.3 features.8 features.17 features.26 features.35 features.36",
              (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "vgg19_bn": ("features.5 features.12 features.25 features.38 features.51 features.52",
                 (64, 128, 256, 512, 512, 512), (1, 2, 4, 8, 16, 32)),
    "wide_resnet101_2": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
    "wide_resnet50_2": ("relu layer1 layer2 layer3 layer4", (64, 256, 512, 1024, 2048), (2, 4, 8, 16, 32)),
}

# torchvision's DenseNet files predate its module names: "denselayer1.norm.1.weight" is "denselayer1.norm1.weight".
_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var|num_batches_tracked))$"
)


def list_torchvision_backbones(pattern: Optional[str] = None) -> List[str]:
    """The torchvision backbones encdec builds as encoders, sorted, optionally filtered by a shell pattern.

    Example:
        >>> list_torchvision_backbones("resnet*")
        ['resnet101', 'resnet152', 'resnet18', 'resnet34', 'resnet50']
    """
    names = sorted(BACKBONES)
    return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]


def _body(name: str) -> Tuple[str, ...]:
    return next(steps for prefixes, steps in _BODIES if name.startswith(prefixes))


@contextlib.contextmanager
def _regnet_widths_on_cpu() -> Iterator[None]:
    """torchvision computes RegNet stage widths with tensor arithmetic and ``.tolist()``, which the meta device
    cannot run; the widths are computed on the CPU so that RegNets build on the meta device too."""
    original = _tv_regnet.BlockParams.__dict__["from_init_params"]

    def on_cpu(*args, **kwargs):
        with torch.device("cpu"):
            return original.__func__(_tv_regnet.BlockParams, *args, **kwargs)

    _tv_regnet.BlockParams.from_init_params = on_cpu
    try:
        yield
    finally:
        _tv_regnet.BlockParams.from_init_params = original


def _check_name(name: str) -> None:
    if name in BACKBONES:
        return
    close = difflib.get_close_matches(name, list(BACKBONES), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise EncoderError(
        f"Unknown encoder {name!r}.{hint} torchvision backbones: {', '.join(sorted(BACKBONES))}; any timm backbone "
        "as 'timm:NAME' when timm is installed."
    )


class TorchvisionEncoder(nn.Module):
    """A torchvision classification network as an encoder: its feature body, returning a map per stride.

    Args:
        name: A torchvision model name from ``BACKBONES`` (``"resnet34"``, ``"efficientnet_b0"``, ...).
        in_channels: Image channels; the first convolution is adapted from the RGB one (see
            ``adapt_input_channels``).
        weights: A torchvision ImageNet state-dict file for this architecture (its classifier is left out).
        output_stride: Keep the maps at most this coarse by dilation (8 or 16, for DeepLab); default: none.
        depth: Keep only the maps within this many halvings (stride ``2 ** depth`` at most), and only the layers
            they need (PSPNet uses 3); default: every map.

    Attributes:
        out_channels: Channels of each feature map.
        strides: Stride of each feature map.
        left_out: The network's layers past the last map a limited ``depth`` keeps: not built, and their entries
            left out of weight files.

    Example:
        >>> enc = TorchvisionEncoder("efficientnet_b0")
        >>> enc.strides, [f.shape[1] for f in enc(torch.zeros(1, 3, 64, 64))]
        ([2, 4, 8, 16, 32], [16, 24, 40, 112, 1280])
    """

    def __init__(self, name: str, *, in_channels: int = 3, weights: Optional[PathLike] = None,
                 output_stride: Optional[int] = None, depth: Optional[int] = None) -> None:
        super().__init__()
        network = torchvision_backbone(name)
        taps, channels, strides = BACKBONES[name]
        kept = len(strides) if depth is None else maps_within_depth(strides, depth, name=name)
        steps = []
        for step in _body(name):
            if step.endswith(".*"):
                parent = step[:-2]
                steps += [f"{parent}.{child}" for child, _ in network.get_submodule(parent).named_children()]
            else:
                steps.append(step)
        tap_list = taps.split()
        used = steps[: steps.index(tap_list[kept - 1]) + 1]
        self.left_out = tuple(steps[len(used) : steps.index(tap_list[-1]) + 1])
        self.size_multiple, self.fixed_size = 1, None  # any input side; the decoders set theirs
        for step in self.left_out:
            parent, _, child = step.rpartition(".")
            if parent:
                delattr(network.get_submodule(parent), child)
        for top in dict.fromkeys(step.split(".")[0] for step in used):
            self.add_module(top, network.get_submodule(top))
        self.name = name
        self.steps = tuple(used)
        self.taps = frozenset(tap_list[:kept])
        self.out_channels: List[int] = list(channels[:kept])
        self.strides: List[int] = list(strides[:kept])
        if weights is not None:
            load_torchvision_weights(self, weights)
        adapt_input_channels(self, in_channels, pretrained=weights is not None)
        if output_stride is not None:
            dilate(self, output_stride, name=name)

    def forward(self, x: Tensor) -> List[Tensor]:
        features = []
        for step in self.steps:
            x = self.get_submodule(step)(x)
            if step in self.taps:
                features.append(x)
        return features


def torchvision_dilation(encoder: TorchvisionEncoder) -> None:
    """Re-dilate a ResNet encoder dilated by :func:`~encdec.encoders.contract.dilate` as torchvision's
    ``replace_stride_with_dilation`` does it, in place.

    segmentation_models_pytorch dilates every convolution of a stage that no longer downsamples alike; torchvision
    (its DeepLabV3 and FCN models) leaves the first block's 3x3 convolution, the one that downsampled, at the
    dilation of the stage before (1 in ``layer3`` and 2 in ``layer4`` at output stride 8). The weights are the
    same; the outputs are not. Its 1x1 convolutions keep dilation 1 (smp dilates them too, which changes no sum
    but may change the kernel a CPU library picks, and so the rounding).

    Raises:
        EncoderError: The encoder is not a torchvision ResNet.

    Example:
        >>> enc = TorchvisionEncoder("resnet50", output_stride=8)
        >>> torchvision_dilation(enc)
        >>> enc.layer3[0].conv2.dilation, enc.layer3[1].conv2.dilation, enc.layer4[0].conv2.dilation
        ((1, 1), (2, 2), (2, 2))
    """
    if not encoder.name.startswith(("resnet", "resnext", "wide_resnet")):
        raise EncoderError(f"torchvision dilates only its ResNets; {encoder.name} is not one")
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        if not hasattr(encoder, stage):
            continue
        for conv in getattr(encoder, stage).modules():
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1):
                conv.dilation, conv.padding = (1, 1), (0, 0)  # no effect on the sums, but on oneDNN's kernel choice
        first = getattr(encoder, stage)[0]
        conv = first.conv2 if hasattr(first, "conv3") else first.conv1  # the 3x3 convolution that downsampled
        rate = conv.dilation[0]
        if rate > 1:
            conv.dilation = (rate // 2, rate // 2)
            conv.padding = tuple((rate // 2) * (k - 1) // 2 for k in conv.kernel_size)


def load_torchvision_weights(encoder: TorchvisionEncoder, path: PathLike) -> None:
    """Load a torchvision ImageNet state-dict file into a ``TorchvisionEncoder`` of the same architecture.

    The classifier (``fc.*``, ``classifier.*``) and the layers an encoder of limited ``depth`` leaves out are
    left out; every other entry must fit, with the usual ``WeightsError`` listing of missing, unexpected and
    mis-shaped keys.

    Example:
        >>> import tempfile, torchvision
        >>> path = tempfile.mkdtemp() + "/mobilenet_v3_small.pth"
        >>> torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
        >>> load_torchvision_weights(TorchvisionEncoder("mobilenet_v3_small"), path)
    """
    state = read_state_dict(path)
    if encoder.name.startswith("densenet"):
        state = {_DENSENET_KEY.sub(r"\1\2", k): v for k, v in state.items()}
    unused = _HEADS + tuple(f"{step}." for step in encoder.left_out)
    state = {k: v for k, v in state.items() if not k.startswith(unused)}
    try:
        load_state_dict(encoder, state, strict=True, source=str(path))
    except WeightsError as error:
        raise WeightsError(f"{error}\n  (encoder_weights must be torchvision's state-dict file for {encoder.name})"
                           ) from None


def torchvision_backbone(name: str) -> nn.Module:
    """torchvision's own classification network of a backbone name, randomly initialised (no download).

    Example:
        >>> type(torchvision_backbone("resnet18")).__name__
        'ResNet'
    """
    _check_name(name)
    with _regnet_widths_on_cpu():
        return torchvision.models.get_model(name, weights=None)
