"""``predict`` and ``optimize_for_inference``: label maps for any input size, in the fastest safe precision.

``predict`` takes a tensor, PIL images, NumPy arrays or file paths; pads every image up to the model's
size rule (``model.input_spec``; reflection padding at the bottom and right), runs the model in eval mode under
``torch.inference_mode`` and crops the output back to the input size.

``optimize_for_inference`` returns an eval-mode copy with every Convolution -> BatchNorm pair folded into one
convolution (``torch.fx`` finds the pairs, ``torch.nn.utils.fusion.fuse_conv_bn_eval`` folds them) and the
channels-last memory format, with the same outputs up to float rounding.
"""

from __future__ import annotations

import copy
import itertools
import os
import weakref
from collections import Counter
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._image_inputs import ImageRows
from .batches import check_finite, class_labels, class_probabilities, logits_of
from .image_files import MAX_PIXELS, check_max_pixels
from .input_spec import input_spec_of, resized_side
from .layout import LayoutProbe, choose_channels_last
from .normalization import IMAGENET_MEAN, IMAGENET_STD
from .preprocessing import recorded_size, resize_policy
from .runtime import autocast, check_channels_last, compile_module, resolve_device, resolve_precision
from .tiling import check_overlap, sliding_window

__all__ = ["predict", "optimize_for_inference", "IMAGENET_MEAN", "IMAGENET_STD"]

ImageLike = Union[torch.Tensor, np.ndarray, "os.PathLike[str]", str, Any]


# ---------------------------------------------------------------------------------------------- predict


def _normalization(model: nn.Module, mean: Optional[Sequence[float]], std: Optional[Sequence[float]]):
    config = getattr(model, "encdec_config", None) or {}
    mean = mean if mean is not None else config.get("mean", IMAGENET_MEAN)
    std = std if std is not None else config.get("std", IMAGENET_STD)
    return torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1), torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)


def _training_size(model: nn.Module, size: Union[str, int, None]) -> Optional[int]:
    if size is None:
        return None
    if size == "auto":
        return recorded_size(model)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be 'auto', None or a positive integer, got {size!r}")
    return size


def _resize_like_training(image: torch.Tensor, side: int, policy: str) -> torch.Tensor:
    """A normalised ``(C, H, W)`` image brought to ``side x side`` the way training did."""
    h, w = image.shape[-2:]
    if policy == "shorter-side+center-crop":
        scale = side / min(h, w)
        nh, nw = max(side, round(h * scale)), max(side, round(w * scale))
        image = F.interpolate(image[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)[0]
        top, left = (nh - side) // 2, (nw - side) // 2
        return image[:, top : top + side, left : left + side]
    if (h, w) == (side, side):
        return image
    return F.interpolate(image[None], size=(side, side), mode="bilinear", antialias=True, align_corners=False)[0]


def _restore(output: torch.Tensor, size: Tuple[int, ...], probabilities: bool) -> torch.Tensor:
    """Probabilities at the resized side brought back to the image's own size (segmentation), as asked for."""
    if output.dim() == 3 and tuple(output.shape[-2:]) != tuple(size):
        output = F.interpolate(output[None], size=tuple(size), mode="bilinear", align_corners=False)[0]
    return output if probabilities else class_labels(output[None])[0]


def _pad(batch: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """Pad a batch at the bottom and right up to the model's next valid size (models that take one fixed size
    are fed as they are: padding would not make an image of another size fit)."""
    spec = input_spec_of(model)
    if spec is None or spec.fixed is not None:
        return batch
    h, w = batch.shape[-2:]
    ph, pw = spec.valid_size(h) - h, spec.valid_size(w) - w
    if ph == 0 and pw == 0:
        return batch
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(batch, (0, pw, 0, ph), mode=mode)


class _FastModel:
    """The folded copy of one model, remembered until the model's weights change."""

    def __init__(self, fingerprint: tuple, module: nn.Module) -> None:
        self.fingerprint, self.module = fingerprint, module
        self.compiled: Dict[bool, Callable[..., Any]] = {}


_FAST_MODELS: weakref.WeakKeyDictionary[nn.Module, _FastModel] = weakref.WeakKeyDictionary()


def _fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer is replaced, moved or modified in place (optimizer steps,
    ``load_state_dict`` and ``.to()`` all do one of these)."""
    return tuple((t.data_ptr(), t._version, t.dtype, t.device)
                 for t in itertools.chain(model.parameters(), model.buffers()))


def _folded(model: nn.Module) -> nn.Module:
    """The model with Conv+BatchNorm folded, built once and reused while its weights stay the same."""
    fingerprint = _fingerprint(model)
    cached = _FAST_MODELS.get(model)
    if cached is None or cached.fingerprint != fingerprint:
        with torch.inference_mode(False):
            cached = _FastModel(fingerprint, optimize_for_inference(model, channels_last=False))
        _FAST_MODELS[model] = cached
    return cached.module


class _Runner:
    """Runs batches through the (folded) model in the layout chosen for their shape, compiled when asked."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str, channels_last: Union[bool, str],
                 optimize: bool, compile: bool) -> None:
        self.model, self.device, self.precision = model, device, precision
        self.module = _folded(model) if optimize else model
        self.probe = LayoutProbe(channels_last, model, device, precision)
        self.compile = compile
        self.compiled_layout: Optional[bool] = None
        self.activation = (getattr(model, "encdec_config", None) or {}).get("activation")

    def _callable(self, channels_last: bool) -> Callable[..., Any]:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        if not self.compile:
            self.module.to(memory_format=layout)
            return self.module
        cache = _FAST_MODELS[self.model].compiled if self.module is not self.model else {}
        if channels_last not in cache:
            self.module.to(memory_format=layout)
            cache[channels_last] = compile_module(self.module, inference=True, device=self.device)
        return cache[channels_last]

    def logits(self, batch: torch.Tensor, where: str, measurable: bool = True) -> torch.Tensor:
        """Float logits of a batch: padded to the model's size rule on the way in, cropped back on the way out (a
        segmentation model that takes one fixed size gets the batch resized to it, and its logits resized back)."""
        h, w = batch.shape[-2:]
        x = _pad(batch.to(self.device), self.model)
        fixed = resized_side(self.model)
        if fixed is not None and (h, w) != (fixed, fixed):
            x = F.interpolate(x, size=(fixed, fixed), mode="bilinear", align_corners=False, antialias=True)

        def forward(channels_last: bool) -> torch.Tensor:
            xi = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            with autocast(self.precision, self.device):
                return logits_of(self._callable(channels_last)(xi), "predict").float()

        if self.compile:  # one layout for every batch: each layout would be compiled separately
            if self.compiled_layout is None:
                self.compiled_layout = self.probe.fallback(tuple(x.shape))
            logits = forward(self.compiled_layout)
        else:
            logits = self.probe.run(tuple(x.shape), forward, measurable=measurable)  # type: ignore[assignment]
        check_finite(logits, where)
        if logits.dim() == 4 and fixed is not None and (h, w) != (fixed, fixed):
            return F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
        return logits[..., :h, :w] if logits.dim() == 4 else logits

    def __call__(self, batch: torch.Tensor, first: int, probabilities: bool, measurable: bool) -> torch.Tensor:
        logits = self.logits(batch, f"predict, images {first + 1}-{first + len(batch)}", measurable)
        out = class_probabilities(logits, self.activation) if probabilities else class_labels(logits)
        return out.cpu().contiguous()

    def tiled(self, image: Union[torch.Tensor, ImageRows], index: int, tile: Optional[int], overlap: float,
              batch_size: int, tta: bool, probabilities: bool) -> torch.Tensor:
        """One image ``(C, H, W)`` (or its rows, read band by band) through overlapping tiles
        (``encdec.tiling.sliding_window``)."""
        spec = input_spec_of(self.model)
        if tile is not None and spec is not None and spec.fixed is not None:
            raise ValueError(f"tile={tile}: {type(self.model).__name__} takes one fixed input size "
                             f"({spec.fixed}), so its images cannot be tiled")

        def forward(tiles: torch.Tensor) -> torch.Tensor:
            logits = self.logits(tiles, f"predict, tiles of image {index + 1}")
            if logits.dim() != 4:
                raise ValueError("tile= and tta= apply to segmentation models; this model returns "
                                 f"{tuple(logits.shape)} (one score per class, not per pixel)")
            return logits

        return sliding_window(forward, image.to(self.device), tile=tile, overlap=overlap, batch_size=batch_size,
                              tta=tta, probabilities=probabilities, multiple=spec.multiple if spec is not None else 1)


def predict(
    model: nn.Module,
    images: Union[ImageLike, Sequence[ImageLike]],
    *,
    batch_size: int = 8,
    probabilities: bool = False,
    mean: Optional[Sequence[float]] = None,
    std: Optional[Sequence[float]] = None,
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    channels_last: Union[bool, str] = "auto",
    optimize: bool = True,
    compile: bool = False,
    size: Union[str, int, None] = "auto",
    tile: Optional[int] = None,
    overlap: float = 0.25,
    tta: bool = False,
    max_pixels: Optional[int] = MAX_PIXELS,
) -> Union[torch.Tensor, List[torch.Tensor]]:
    """Label maps (or class probabilities) for images of any size.

    Float tensors are taken as already preprocessed (normalised) model inputs. Everything else -- ``uint8``
    tensors ``(C, H, W)`` or ``(N, C, H, W)``, PIL images, arrays ``(H, W, C)`` / ``(H, W)`` and file paths --
    is scaled to ``[0, 1]`` and normalised with ``mean`` / ``std``; image files are read upright by their EXIF
    orientation (``encdec.image_files``; images passed in memory are taken as they are). Each image is padded at
    the bottom and right up to the next size its ``input_spec`` accepts, and the output is cropped back to the
    image size. The model is moved to ``device`` and put in eval mode (its previous mode is restored afterwards).

    By default the batches run through a copy of the model with every Convolution -> BatchNorm pair folded
    (``optimize_for_inference``), built on the first call and reused until the model's weights change (an
    optimizer step, ``load_state_dict`` or ``.to()``), in the memory layout the layout rule gives for the
    device, precision and input size (``channels_last="auto"``). The model itself is not modified. Labels equal
    those of ``model(x).argmax(1)`` up to float rounding.

    Args:
        model: Segmentation model (logits ``(N, C, H, W)``) or classifier (``(N, C)``), or an
            ``encdec.OnnxPredictor`` (run in ONNX Runtime or OpenVINO, in fp32 on the CPU).
        images: A tensor ``(N, C, H, W)`` or ``(C, H, W)``; or one image or a list of images of any sizes.
        batch_size: Images per forward pass.
        probabilities: Return class probabilities instead of labels: a softmax over the classes, or a sigmoid per
            output for one-output models and for models whose config records ``activation="sigmoid"`` (smp models
            built with it; their forward returns logits).
        mean: Per-channel mean for non-float inputs; default: the model's ``encdec_config["mean"]``, else ImageNet.
        std: Per-channel std, same rule.
        device: ``"auto"`` or a torch device.
        precision: ``"auto"`` (bf16 on CPUs with native bfloat16 and on CUDA, else fp32), ``"fp32"``, ``"bf16"``
            or ``"fp16"`` (CUDA).
        channels_last: Channels-last inputs and model. ``"auto"``: a fixed rule per batch shape, nothing timed
            (``encdec.runtime.channels_last_rule``): on for conv nets on CUDA and in bf16 on the CPU, and in
            fp32 on the CPU for images of 128x128 pixels or more (after padding). ``"measure"``: time the first
            four batches of each shape in alternating layouts (their outputs are kept) and keep the faster for
            the process (``encdec.layout.LayoutProbe``).
        optimize: Run the folded copy (``False``: the model itself, e.g. to compare against another runtime
            bit for bit).
        size: Side the images (not float tensors) are resized to before the model sees them; outputs of
            segmentation models are resized back to each image's size (probabilities bilinearly, then the labels
            from them). ``"auto"``: the training size recorded with the model
            (``encdec_config["preprocessing"]``, written by ``encdec train`` / ``save_pretrained``), resized the
            way training did (stretched, or the shorter side then a centre crop); nothing when none is recorded.
            ``None``: each image's own size.
        tile: Predict segmentation images through overlapping tiles of this side (for images larger than memory
            allows, or than the model was trained on): tiles run ``batch_size`` at a time and their probabilities
            are blended with weights falling off towards tile borders. Images that are not resized (``size=None``,
            or no training size recorded) are converted to float one band of tile rows at a time, so besides the
            image as given (a file decoded in its own mode: one byte a pixel for palette and gray PNGs, three for
            RGB) and the result (int64 labels, 8 bytes a pixel), memory holds a band of rows and one batch of
            tiles, not a float copy of the image (see ``encdec.tiling``). Rounded up to the model's size
            multiple; tiles start at multiples of it, so a model that pools sees every pixel as it would untiled.
        overlap: Fraction of a tile shared with its neighbours when tiling, in ``[0, 1)``.
        tta: Also predict every tile (or, without ``tile``, every image) flipped left-right and upside-down and
            average the probabilities.
        max_pixels: Largest ``width * height`` of an image file or PIL image; a larger one is refused with
            ``encdec.image_files.ImageTooLargeError`` before it is decoded (default ``encdec.image_files.MAX_PIXELS``,
            Pillow's decompression-bomb threshold; ``None``: no limit).
        compile: Run the folded copy through ``torch.compile`` with frozen weights (inductor), cached with it:
            faster per batch after a first call that compiles for several seconds (minutes on a cold cache) and
            recompiles for new sizes. Without a C++ compiler it warns and runs uncompiled.

    Returns:
        For a batched tensor: an int64 tensor ``(N, H, W)`` of labels (``(N,)`` for classifiers), or float32
        probabilities ``(N, C, H, W)`` / ``(N, C)``. For one image: the same without the ``N`` axis. For a list:
        a list of those. Always on the CPU.

    Raises:
        TypeError: An input is of a type that is not an image, or ``overlap`` is not a number.
        ValueError: ``batch_size`` or ``tile`` is not positive, ``overlap`` is outside ``[0, 1)``, or an image's
            shape or channels do not fit.
        encdec.image_files.ImageTooLargeError: An image file or PIL image has more than ``max_pixels`` pixels.
        encdec.image_files.UnreadableImageError: An image file that is not an image or is damaged (named).
        encdec.batches.NonFiniteError: The model's outputs for some images are NaN or infinite (never turned into
            labels); the message names the images.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> encdec.predict(model, torch.randn(2, 3, 30, 45)).shape
        torch.Size([2, 30, 45])
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    check_overlap(overlap)  # refused before any work, tiled or not
    check_max_pixels(max_pixels)
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of pixels or None, got {tile!r}")
    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    check_channels_last(channels_last)  # a bad value is refused before any work
    if getattr(model, "encdec_external", False):  # another runtime (OnnxPredictor) runs the model as it is
        if compile:
            raise ValueError(f"compile=True compiles PyTorch models; {type(model).__name__} runs in another runtime")
        device, precision, channels_last, optimize = torch.device("cpu"), "fp32", False, False
    norm_mean, norm_std = _normalization(model, mean, std)

    single = False
    originals: List[Tuple[int, ...]] = []
    if isinstance(images, torch.Tensor) and images.is_floating_point():
        if images.dim() == 3:
            images, single = images.unsqueeze(0), True
        if images.dim() != 4:
            raise ValueError(f"predict: a float tensor must be (N, C, H, W) or (C, H, W), got {tuple(images.shape)}")
        groups: List[Tuple[List[int], torch.Tensor]] = [
            (list(range(i, min(i + batch_size, len(images)))), images[i : i + batch_size])
            for i in range(0, len(images), batch_size)
        ]
        count = len(images)
        as_list = False
    else:
        if isinstance(images, (list, tuple)):
            items, as_list = list(images), True
        elif isinstance(images, torch.Tensor) and images.dim() == 4:  # a uint8 batch (N, C, H, W)
            items, as_list = list(images.unbind(0)), False
        else:
            items, as_list, single = [images], False, True
        sources = [ImageRows(item, norm_mean, norm_std, f"image {i + 1}", max_pixels) for i, item in enumerate(items)]
        target = _training_size(model, size)
        groups, count = [], len(sources)
        if (tile is not None or tta) and target is None:  # tiles read their rows band by band: no float copy
            groups = [([index], [source]) for index, source in enumerate(sources)]  # type: ignore[list-item]
            sources = []
        tensors = []
        while sources:  # each decoded image is let go once converted
            tensors.append(sources.pop(0).whole())
        if target is not None:
            originals = [tuple(t.shape[-2:]) for t in tensors]
            tensors = [_resize_like_training(t, target, resize_policy(model)) for t in tensors]
        if tile is not None or tta:  # one image at a time through tiles: no stacked copy of (large) images
            groups += [([index], tensor.unsqueeze(0)) for index, tensor in enumerate(tensors)]
            tensors = []
        for index, tensor in enumerate(tensors):  # consecutive images of one size share a batch
            last = groups[-1] if groups else None
            if last is not None and len(last[0]) < batch_size and last[1][0].shape == tensor.shape:
                last[0].append(index)
                last[1].append(tensor)  # type: ignore[attr-defined]
            else:
                groups.append(([index], [tensor]))  # type: ignore[arg-type]
        groups = [(indices, batch if isinstance(batch, torch.Tensor) or (tile is not None or tta)
                   else torch.stack(batch)) for indices, batch in groups]  # type: ignore[misc]

    was_training = model.training
    model.to(device)
    model.eval()
    results: List[Optional[torch.Tensor]] = [None] * count
    shapes = Counter(tuple(batch.shape) for _, batch in groups if isinstance(batch, torch.Tensor))
    try:
        runner = _Runner(model, device, precision, channels_last, optimize, compile)
        with torch.inference_mode():
            for indices, batch in groups:
                if tile is not None or tta:
                    for position, index in enumerate(indices):
                        results[index] = runner.tiled(batch[position], index, tile, overlap, batch_size, tta,
                                                      probabilities or bool(originals))
                    continue
                out = runner(batch, indices[0], probabilities or bool(originals),
                             measurable=shapes[tuple(batch.shape)] >= 4)
                for position, index in enumerate(indices):
                    results[index] = out[position]
    finally:
        model.train(was_training)
    if originals:
        results = [_restore(r, hw, probabilities) for r, hw in zip(results, originals)]  # type: ignore[arg-type]
    if as_list:
        return results  # type: ignore[return-value]
    if single:
        return results[0]  # type: ignore[return-value]
    return torch.stack(results)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- optimize_for_inference

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _fuse_conv_bn(module: nn.Module) -> int:
    """Fold Conv -> BatchNorm pairs inside ``module`` in place; returns how many were folded.

    ``torch.fx`` traces the module to find each BatchNorm whose only input is a convolution whose only user is
    that BatchNorm (each called once); the convolution is replaced by the folded one and the BatchNorm by
    ``Identity``, so the module keeps its class, attributes and ``forward``. Parts that cannot be traced
    (e.g. input-size checks) are skipped by tracing their children instead.
    """
    from torch.fx import symbolic_trace
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    try:
        graph = symbolic_trace(module).graph
    except Exception:  # noqa: BLE001 - untraceable Python control flow: look one level down
        return sum(_fuse_conv_bn(child) for child in module.children())
    modules = dict(module.named_modules())
    calls: dict = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    fused = 0
    for node in graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        if not isinstance(bn, nn.modules.batchnorm._BatchNorm) or bn.running_mean is None or len(node.args) != 1:
            continue
        source = node.args[0]
        conv = modules.get(source.target) if getattr(source, "op", None) == "call_module" else None
        if not isinstance(conv, _CONV) or len(source.users) != 1:
            continue
        if calls[source.target] != 1 or calls[node.target] != 1:  # shared modules: folding would change other calls
            continue
        transpose = isinstance(conv, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
        if transpose and conv.groups != 1:  # torch's folding scales dim 1, which holds out_channels / groups
            continue
        folded = fuse_conv_bn_eval(conv.eval(), bn.eval(), transpose=transpose)
        _set_submodule(module, source.target, folded)
        _set_submodule(module, node.target, nn.Identity())
        fused += 1
    return fused


def _set_submodule(root: nn.Module, target: str, new: nn.Module) -> None:
    parent_name, _, name = target.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, name, new)


def optimize_for_inference(
    model: nn.Module, *, channels_last: Union[bool, str] = "auto", inplace: bool = False
) -> nn.Module:
    """An eval-mode model with Conv+BatchNorm folded and channels-last weights, for faster inference.

    The folding uses torch's own utilities: ``torch.fx`` to find each convolution feeding a BatchNorm and
    ``torch.nn.utils.fusion.fuse_conv_bn_eval`` to fold the running statistics into the convolution's weight and
    bias. The returned model keeps its class and attributes (``num_classes``, ``size_multiple``, ...); its
    state dict no longer has the folded BatchNorm entries, so save the original model, not this one. Outputs equal
    the original model's in eval mode up to float rounding. Do not train the result.

    Args:
        model: Any module; BatchNorm layers must have running statistics.
        channels_last: Convert to channels-last. ``"auto"``: the layout rule for inference of any size on the
            model's device (``encdec.runtime.channels_last_rule``): on for conv nets on the CPU and CUDA. Feed
            it channels-last inputs, and run it under bf16 autocast on CPUs with native bfloat16 for the most gain.
        inplace: Modify ``model`` itself instead of a deep copy.

    Returns:
        The optimized model, in eval mode.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128)).eval()
        >>> fast = encdec.optimize_for_inference(model)
        >>> x = torch.randn(1, 3, 32, 32)
        >>> torch.allclose(model(x), fast(x), atol=1e-4)
        True
    """
    optimized = model if inplace else copy.deepcopy(model)
    optimized.eval()
    with torch.no_grad():
        _fuse_conv_bn(optimized)
    param = next(itertools.chain(optimized.parameters(), optimized.buffers()), None)
    device = param.device if param is not None else torch.device("cpu")
    if choose_channels_last(channels_last, optimized, device, resolve_precision("auto", device)):
        optimized.to(memory_format=torch.channels_last)
    return optimized
