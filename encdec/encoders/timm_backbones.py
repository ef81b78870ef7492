"""Encoders from timm (an optional extra): ``encoder="timm:NAME"`` builds ``timm.create_model(NAME,
features_only=True)``, whose ``feature_info`` gives the channels and strides of its maps.

Weights come from a local file only (a timm state dict of the classification model, e.g. the
``model.safetensors`` of a timm release): encdec reads and checks it against the model first, strictly, then
timm loads it (adapting the first convolution to ``in_channels`` as timm does). Nothing is downloaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..weights import load_state_dict, read_state_dict
from .contract import EncoderError, maps_within_depth

__all__ = ["TIMM_PREFIX", "TimmEncoder", "TimmViTEncoder", "timm_available"]

PathLike = Union[str, os.PathLike]

#: Encoder names starting with this are timm models.
TIMM_PREFIX = "timm:"


def timm_available() -> bool:
    """Whether timm can be imported.

    Example:
        >>> isinstance(timm_available(), bool)
        True
    """
    return importlib.util.find_spec("timm") is not None


def _timm() -> Any:
    if not timm_available():
        raise EncoderError("timm encoders need timm: pip install 'encdec[timm]' (or pip install timm)")
    return importlib.import_module("timm")


def _check_weights(timm: Any, name: str, path: PathLike) -> None:
    """Check ``path`` against timm's classification model ``name`` (built on the meta device), strictly, so that
    a file of another architecture is refused by key instead of half loaded. The classifier is left out of the
    comparison: fine-tuned files have their own number of classes."""
    with torch.device("meta"):
        full = timm.create_model(name, pretrained=False)
    classifier = full.pretrained_cfg.get("classifier") or ()
    heads = tuple(f"{c}." for c in ((classifier,) if isinstance(classifier, str) else classifier))
    full.reset_classifier(0)
    state = {k: v for k, v in read_state_dict(path).items() if not (heads and k.startswith(heads))}
    with warnings.catch_warnings():  # the meta model takes nothing: this is a check of names and shapes
        warnings.simplefilter("ignore", UserWarning)
        load_state_dict(full, state, strict=True, source=str(path))


def _indices_within_depth(timm: Any, name: str, depth: int) -> tuple:
    """timm's ``out_indices`` of the maps of ``name`` within ``depth`` halvings (read on the meta device)."""
    try:
        with torch.device("meta"):
            reductions = timm.create_model(name, features_only=True, pretrained=False).feature_info.reduction()
    except (RuntimeError, TypeError, ValueError, AttributeError, AssertionError) as error:
        raise EncoderError(f"timm cannot build {name!r} as an encoder (features_only=True): {error}") from None
    return tuple(range(maps_within_depth(reductions, depth, name=TIMM_PREFIX + name)))


def _fixed_side(name: str, input_size: Any) -> int:
    if not isinstance(input_size, (tuple, list)) or len(input_size) != 3 or input_size[1] != input_size[2]:
        raise EncoderError(f"timm's {name!r} takes only its fixed input size {input_size}, which is not square; "
                           "encdec's models take square fixed sizes only")
    return int(input_size[1])


def _check_map_sizes(timm: Any, name: str, kwargs: dict, encoder: TimmEncoder) -> None:
    """Refuse, when it is built, an encoder whose maps are never the input size divided by their strides (valid
    convolutions, as Inception's): no decoder could merge them. A copy is run on the meta device (no memory)."""
    largest = max(encoder.strides)
    sides = [encoder.fixed_size] if encoder.fixed_size is not None else [largest * 4, largest * 8]
    options = {k: v for k, v in kwargs.items() if k not in ("pretrained", "pretrained_cfg_overlay")}
    if encoder.fixed_size is None and getattr(encoder.model, "pretrained_cfg", {}).get("fixed_input_size"):
        options["dynamic_img_size"] = True
    try:
        with torch.device("meta"):
            probe = timm.create_model(name, features_only=True, **options)
            shapes = []
            for side in sides:
                maps = probe(torch.empty(1, kwargs.get("in_chans", 3), side, side))
                shapes.append([tuple(m.shape[1:3]) if encoder.channels_last_maps else tuple(m.shape[-2:])
                               for m in maps])
    except Exception:  # noqa: BLE001 - a model the meta device cannot run is checked at its first forward
        return
    for side, sizes in zip(sides, shapes):
        if all(hw == (side // s, side // s) for hw, s in zip(sizes, encoder.strides)):
            return
    raise EncoderError(
        f"timm's {name!r} gives maps that are not the input size divided by their strides (at {sides[0]}x{sides[0]}: "
        f"{', '.join(f'{h}x{w}' for h, w in shapes[0])} for strides {encoder.strides}), so no decoder can merge "
        "them; choose another "
        "encoder"
    )


class TimmEncoder(nn.Module):
    """A timm backbone as an encoder, through ``timm.create_model(name, features_only=True)``.

    Its state-dict names are ``model.<timm's names>``, as segmentation_models_pytorch's ``tu-`` encoders have them.

    Args:
        name: A timm model name that supports ``features_only`` (without the ``timm:`` prefix).
        in_channels: Image channels (timm's ``in_chans``).
        weights: A local timm state-dict file of the classification model ``name``.
        output_stride: timm's ``output_stride`` (8 or 16 dilates the last stages, for DeepLab); default: none.
        depth: Keep only the maps within this many halvings (stride ``2 ** depth`` at most), through timm's
            ``out_indices``; default: every map.

    Raises:
        EncoderError: timm is not installed, or ``name`` is unknown to it or has no ``features_only`` form.

    Example:
        >>> enc = TimmEncoder("resnet18") if timm_available() else None
        >>> enc.strides if enc is not None else [2, 4, 8, 16, 32]
        [2, 4, 8, 16, 32]
    """

    def __init__(self, name: str, *, in_channels: int = 3, weights: Optional[PathLike] = None,
                 output_stride: Optional[int] = None, depth: Optional[int] = None) -> None:
        super().__init__()
        timm = _timm()
        if not timm.is_model(name):
            close = timm.list_models(f"*{name[:4]}*")[:5]
            hint = f" Similar timm names: {', '.join(close)}." if close else ""
            raise EncoderError(f"Unknown timm model {name!r}.{hint} timm.list_models() lists them all.")
        kwargs: dict = {"in_chans": in_channels}
        if output_stride is not None:
            kwargs["output_stride"] = output_stride
        if depth is not None:
            kwargs["out_indices"] = _indices_within_depth(timm, name, depth)
        if weights is not None:
            _check_weights(timm, name, weights)
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": os.fspath(weights)})
        try:
            self.model = timm.create_model(name, features_only=True, **kwargs)
        except (RuntimeError, TypeError, ValueError, AttributeError, AssertionError) as error:
            raise EncoderError(f"timm cannot build {name!r} as an encoder (features_only=True): {error}") from None
        config = getattr(self.model, "pretrained_cfg", None) or {}
        #: The one input side the encoder takes (timm's ``fixed_input_size`` models that cannot size dynamically).
        self.fixed_size: Optional[int] = None
        #: Whether timm built the model with ``dynamic_img_size=True`` (a fixed-size model that can size itself).
        self.dynamic_img_size = False
        if config.get("fixed_input_size"):
            try:  # ViT-like models interpolate their position embeddings when built with dynamic_img_size
                self.model = timm.create_model(name, features_only=True, dynamic_img_size=True, **kwargs)
                self.dynamic_img_size = True
            except (RuntimeError, TypeError, ValueError, AttributeError, AssertionError):
                self.fixed_size = _fixed_side(name, config.get("input_size"))
        self.name = TIMM_PREFIX + name
        self.out_channels: List[int] = list(self.model.feature_info.channels())
        self.strides: List[int] = list(self.model.feature_info.reduction())
        #: Height and width must be divisible by this (the coarsest stride; patch grids and windows need no more
        #: once timm sizes them dynamically).
        self.size_multiple = max(self.strides)
        self.left_out: tuple = ()  # timm builds only the stages out_indices needs
        # Transformers such as Swin give channels-last maps (timm's ``output_fmt``); decoders take NCHW.
        self.channels_last_maps = getattr(self.model, "output_fmt", "NCHW") == "NHWC"  # timm's Format is a str enum
        _check_map_sizes(timm, name, kwargs, self)

    def forward(self, x: Tensor) -> List[Tensor]:
        maps = list(self.model(x))
        return [m.permute(0, 3, 1, 2) for m in maps] if self.channels_last_maps else maps


def _uniform_blocks(count: int, blocks: int) -> List[int]:
    """``count`` block indices spread evenly over ``blocks`` blocks, the last block last (DPT's choice)."""
    return [blocks * step // count - 1 for step in range(1, count + 1)]


class TimmViTEncoder(nn.Module):
    """A timm Vision Transformer (or any timm model with ``forward_intermediates``) as an encoder of
    single-stride maps: the outputs of ``depth`` of its blocks, each reshaped to a map, for DPT.

    ``forward`` returns the maps (the encoder contract); :meth:`forward_with_prefix_tokens` also returns each
    block's prefix (class) tokens, which DPT's readout uses. The model is timm's classifier without its head, under
    ``model.``, as segmentation_models_pytorch's ``TimmViTEncoder`` holds it (its ``model.head.*`` entries are
    :attr:`left_out`). A model timm builds for a fixed input size is built with ``dynamic_img_size=True`` where
    timm can, so it takes any multiple of its patch size.

    Args:
        name: A timm model name (without the ``timm:`` prefix).
        in_channels: Image channels.
        weights: A local timm state-dict file of the classification model ``name``.
        depth: How many blocks' outputs to return.
        output_indices: Which blocks (negative counts from the end); default: ``depth`` spread evenly, the last
            block last.

    Raises:
        EncoderError: timm missing, an unknown name, a model without ``forward_intermediates``, or indices
            outside its blocks.

    Example:
        >>> enc = TimmViTEncoder("vit_tiny_patch16_224") if timm_available() else None
        >>> (enc.out_channels, enc.strides) if enc is not None else ([192] * 4, [16] * 4)
        ([192, 192, 192, 192], [16, 16, 16, 16])
    """

    def __init__(self, name: str, *, in_channels: int = 3, weights: Optional[PathLike] = None, depth: int = 4,
                 output_indices: Optional[Sequence[int]] = None) -> None:
        super().__init__()
        timm = _timm()
        if not timm.is_model(name):
            raise EncoderError(f"Unknown timm model {name!r}; timm.list_models('vit_*') lists the ViTs")
        kwargs: dict = {"in_chans": in_channels, "num_classes": 0}
        if weights is not None:
            _check_weights(timm, name, weights)
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": os.fspath(weights)})
        self.model = timm.create_model(name, **kwargs)
        self.fixed_size: Optional[int] = None
        #: Whether timm built the model with ``dynamic_img_size=True`` (its position embeddings are resampled to
        #: each input size).
        self.dynamic_img_size = False
        if (getattr(self.model, "pretrained_cfg", None) or {}).get("fixed_input_size"):
            try:
                self.model = timm.create_model(name, dynamic_img_size=True, **kwargs)
                self.dynamic_img_size = True
            except (RuntimeError, TypeError, ValueError, AttributeError, AssertionError):
                self.fixed_size = _fixed_side(name, self.model.pretrained_cfg.get("input_size"))
        if not hasattr(self.model, "forward_intermediates"):
            raise EncoderError(f"timm's {name!r} has no forward_intermediates, so its blocks' outputs cannot be "
                               "read; choose a ViT-like timm model (vit_*, deit_*, eva*)")
        info = self.model.feature_info
        blocks = len(info)
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= blocks:
            raise EncoderError(f"depth must be a number of blocks from 1 to {blocks} for {name!r}, got {depth!r}")
        indices = _uniform_blocks(depth, blocks) if output_indices is None else [int(i) for i in output_indices]
        if len(indices) != depth or any(not -blocks <= i < blocks for i in indices):
            raise EncoderError(f"output_indices must be {depth} block indices in [-{blocks}, {blocks}) for "
                               f"{name!r}, got {list(output_indices or [])}")
        self.output_indices = indices
        self.name = TIMM_PREFIX + name
        self.out_channels: List[int] = [int(info[i]["num_chs"]) for i in indices]
        self.strides: List[int] = [int(info[i]["reduction"]) for i in indices]
        self.size_multiple = max(self.strides)
        self.num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self.left_out = ["model.head"]

    def forward_with_prefix_tokens(self, x: Tensor) -> Tuple[List[Tensor], List[Optional[Tensor]]]:
        """The maps and, for each, its block's prefix tokens ``(N, tokens, C)`` (``None`` for a model without
        any).

        Example:
            >>> enc = TimmViTEncoder("vit_tiny_patch16_224") if timm_available() else None
            >>> maps, tokens = enc.forward_with_prefix_tokens(torch.zeros(1, 3, 32, 48)) if enc else ([0], [0])
            >>> (tuple(maps[0].shape), tuple(tokens[0].shape)) if enc else ((1, 192, 2, 3), (1, 1, 192))
            ((1, 192, 2, 3), (1, 1, 192))
        """
        if not self.num_prefix_tokens:
            maps = self.model.forward_intermediates(x, indices=self.output_indices, intermediates_only=True)
            return list(maps), [None] * len(maps)
        pairs = self.model.forward_intermediates(x, indices=self.output_indices, intermediates_only=True,
                                                 return_prefix_tokens=True)
        return [m for m, _ in pairs], [t for _, t in pairs]

    def forward(self, x: Tensor) -> List[Tensor]:
        return self.forward_with_prefix_tokens(x)[0]
