"""Ready-made ``torchvision.transforms.v2`` pipelines: the reference presets and sensible training augmentation.

Segmentation presets are joint transforms, called as ``preset(image, mask)`` with the mask wrapped as a
``tv_tensors.Mask`` (the datasets of ``encdec.datasets`` do this through
``apply_paired``): one random draw moves image and mask together, masks are
resampled with nearest neighbour only, and masks are never rescaled or converted to float.
Classification presets take the image tensor alone.

Inputs are image tensors ``(3, H, W)``, uint8 (as the datasets return them) or float in ``[0, 1]``.

Reference presets (what the reference checkpoints were trained and evaluated with):

* VOC (the VOC U-Net report): resize to 256x256 with PIL's **nearest** filter for the image too, ImageNet normalisation.
* Oxford Pet (the Pet report): resize to 256x256 with PIL's bilinear filter (masks: nearest), values in ``[0, 1]``
  without normalisation; random horizontal and vertical flips for training.

The reference resizes go through Pillow itself (``PILResize``), so their pixels equal the course code's
``Image.resize`` exactly; torch's own ``"nearest"`` picks other source pixels than PIL's, and its bilinear
filter rounds differently.
* CIFAR-10 (the CIFAR-10 report): RandomCrop(32, padding=4) + RandomHorizontalFlip for training, normalisation with
  mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010).

Example:
    >>> import torch
    >>> from torchvision import tv_tensors
    >>> from encdec.datasets import presets
    >>> t = presets.voc_eval()
    >>> image = tv_tensors.Image(torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8))
    >>> mask = tv_tensors.Mask(torch.zeros(300, 400, dtype=torch.long))
    >>> x, y = t(image, mask)
    >>> tuple(x.shape), x.dtype, tuple(y.shape), y.dtype
    ((3, 256, 256), torch.float32, (256, 256), torch.int64)
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from ..input_spec import size_pair
from ..normalization import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "PILResize",
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "cifar_eval",
    "cifar_train",
    "classification_eval",
    "classification_train",
    "dogs_eval",
    "dogs_train",
    "get_preset",
    "pets_eval",
    "pets_train",
    "segmentation_eval",
    "segmentation_train",
    "voc_eval",
    "voc_train",
]


Size = Union[int, Tuple[int, int]]
Stats = Optional[Sequence[float]]


def _interp(mode: Union[str, InterpolationMode]) -> InterpolationMode:
    return mode if isinstance(mode, InterpolationMode) else InterpolationMode(mode.lower())


def _finish(mean: Stats, std: Stats) -> List[Any]:
    steps: List[Any] = [v2.ToDtype(torch.float32, scale=True)]
    if (mean is None) != (std is None):
        raise ValueError("pass both mean and std, or neither")
    if mean is not None:
        steps.append(v2.Normalize(mean=list(mean), std=list(std)))  # type: ignore[arg-type]
    return steps


class PILResize(v2.Transform):
    """Resize images and masks with Pillow, exactly as course code calling ``Image.resize`` does.

    Images (uint8 tensors, or floats in ``[0, 1]`` converted like ``ToPILImage``: ``x.mul(255).byte()``) are
    resized with ``image_filter``; ``tv_tensors.Mask`` masks always with ``NEAREST``. The outputs are uint8
    image tensors and int64 masks, for the rest of a v2 pipeline.

    Args:
        size: Output ``(H, W)`` or side.
        image_filter: ``"nearest"`` or ``"bilinear"`` (Pillow's filters; bilinear antialiases when shrinking).

    Example:
        >>> from torchvision import tv_tensors
        >>> image = tv_tensors.Image(torch.randint(0, 256, (3, 30, 40), dtype=torch.uint8))
        >>> PILResize((16, 20), "bilinear")(image).shape
        torch.Size([3, 16, 20])
    """

    _FILTERS = {"nearest": 0, "bilinear": 2}  # PIL.Image.NEAREST, PIL.Image.BILINEAR

    def __init__(self, size: Size, image_filter: str = "bilinear") -> None:
        super().__init__()
        if image_filter not in self._FILTERS:
            raise ValueError(f"image_filter must be one of {sorted(self._FILTERS)}, got {image_filter!r}")
        self.height, self.width = size_pair(size)
        self.image_filter = self._FILTERS[image_filter]

    def _resize(self, array: np.ndarray, resample: int) -> np.ndarray:
        return np.array(Image.fromarray(array).resize((self.width, self.height), resample))  # a writable copy

    def transform(self, inpt: Any, params: Dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            resized = self._resize(inpt.numpy().astype(np.int32), 0)
            return tv_tensors.wrap(torch.from_numpy(resized.astype(np.int64)), like=inpt)
        if isinstance(inpt, torch.Tensor) and inpt.dim() == 3:
            data = inpt if inpt.dtype == torch.uint8 else inpt.mul(255).byte()
            array = data.permute(1, 2, 0).numpy()
            resized = self._resize(array[..., 0] if array.shape[-1] == 1 else array, self.image_filter)
            out = torch.from_numpy(np.ascontiguousarray(resized.reshape(self.height, self.width, -1))).permute(2, 0, 1)
            return tv_tensors.Image(out) if isinstance(inpt, tv_tensors.Image) else out
        return inpt


def segmentation_eval(
    size: Optional[Size] = 256,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
    interpolation: Union[str, InterpolationMode] = "bilinear",
) -> v2.Compose:
    """Resize to a fixed size (masks: nearest), convert to float, normalise.

    Args:
        size: Output ``(H, W)`` or side; ``None`` keeps the input size.
        mean: Normalisation mean, or ``None`` to keep values in ``[0, 1]``.
        std: Normalisation std, or ``None``.
        interpolation: Image interpolation: ``"nearest"`` and ``"pil_bilinear"`` resize with Pillow exactly as the
            reference code does (``PILResize``); ``"bilinear"``, ``"bicubic"``, ... use torch. Masks always
            use nearest.

    Returns:
        A joint ``v2.Compose`` to call as ``t(image, mask)``.

    Example:
        >>> t = segmentation_eval(128, mean=None, std=None)
    """
    steps: List[Any] = []
    if size is not None:
        steps.append(_resize(size, interpolation))
    return v2.Compose(steps + _finish(mean, std))


def _resize(size: Size, interpolation: Union[str, InterpolationMode]) -> Any:
    """Pillow's resize for the reference filters (``"nearest"``, ``"pil_bilinear"``), torch's otherwise."""
    if interpolation == "nearest":
        return PILResize(size, "nearest")
    if interpolation == "pil_bilinear":
        return PILResize(size, "bilinear")
    return v2.Resize(size_pair(size), interpolation=_interp(interpolation), antialias=True)


def segmentation_train(
    size: Size = 256,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
    scale: Tuple[float, float] = (0.5, 1.0),
    hflip: float = 0.5,
    vflip: float = 0.0,
    color_jitter: float = 0.0,
    interpolation: Union[str, InterpolationMode] = "bilinear",
) -> v2.Compose:
    """Training augmentation: random resized crop, flips, optional colour jitter, float, normalise.

    Args:
        size: Output ``(H, W)`` or side.
        scale: Area range of the random crop (``(1.0, 1.0)`` with the default ratio gives a plain resize).
        mean: Normalisation mean, or ``None``.
        std: Normalisation std, or ``None``.
        hflip: Probability of a horizontal flip.
        vflip: Probability of a vertical flip.
        color_jitter: Brightness/contrast/saturation jitter strength (0 disables it); images only.
        interpolation: Image interpolation; masks always use nearest.

    Returns:
        A joint ``v2.Compose`` to call as ``t(image, mask)``.

    Example:
        >>> t = segmentation_train(64, hflip=0.5, vflip=0.5)
    """
    steps: List[Any] = [
        v2.RandomResizedCrop(size_pair(size), scale=scale, interpolation=_interp(interpolation), antialias=True)
    ]
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    if vflip > 0:
        steps.append(v2.RandomVerticalFlip(p=vflip))
    if color_jitter > 0:
        steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return v2.Compose(steps + _finish(mean, std))


def classification_eval(
    size: Optional[Size] = 224, mean: Stats = IMAGENET_MEAN, std: Stats = IMAGENET_STD, crop: float = 0.875
) -> v2.Compose:
    """Resize the shorter side to ``size / crop``, centre-crop ``size``, float, normalise.

    Args:
        size: Output side (or ``(H, W)``); ``None`` keeps the input size.
        mean: Normalisation mean, or ``None``.
        std: Normalisation std, or ``None``.
        crop: Share of the resized image kept by the centre crop (1.0 resizes straight to ``size``).

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = classification_eval(224)
    """
    steps: List[Any] = []
    if size is not None:
        h, w = size_pair(size)
        if crop >= 1.0:
            steps.append(v2.Resize((h, w), antialias=True))
        else:
            steps += [v2.Resize(int(round(min(h, w) / crop)), antialias=True), v2.CenterCrop((h, w))]
    return v2.Compose(steps + _finish(mean, std))


def classification_train(
    size: Size = 224,
    mean: Stats = IMAGENET_MEAN,
    std: Stats = IMAGENET_STD,
    scale: Tuple[float, float] = (0.25, 1.0),
    hflip: float = 0.5,
    color_jitter: float = 0.2,
) -> v2.Compose:
    """Training augmentation: random resized crop, horizontal flip, colour jitter, float, normalise.

    Args:
        size: Output side or ``(H, W)``.
        mean: Normalisation mean, or ``None``.
        std: Normalisation std, or ``None``.
        scale: Area range of the random crop.
        hflip: Probability of a horizontal flip.
        color_jitter: Brightness/contrast/saturation jitter (0 disables it).

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = classification_train(96)
    """
    steps: List[Any] = [v2.RandomResizedCrop(size_pair(size), scale=scale, antialias=True)]
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    if color_jitter > 0:
        steps.append(v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter))
    return v2.Compose(steps + _finish(mean, std))


# ---- named presets --------------------------------------------------------------------------------------------
def voc_eval(size: Size = 256, interpolation: Union[str, InterpolationMode] = "nearest") -> v2.Compose:
    """VOC reference preset (the VOC U-Net report): resize to 256x256, nearest for the image too, ImageNet mean/std.

    Args:
        size: Output side or ``(H, W)``.
        interpolation: Image interpolation; ``"nearest"`` reproduces the reference pixel for pixel (Pillow's
            filter), ``"bilinear"`` is smoother.

    Returns:
        A joint ``v2.Compose``.

    Example:
        >>> t = voc_eval()
    """
    return segmentation_eval(size, IMAGENET_MEAN, IMAGENET_STD, interpolation)


def voc_train(
    size: Size = 256, augment: bool = True, interpolation: Union[str, InterpolationMode] = "nearest"
) -> v2.Compose:
    """VOC training preset: random resized crop (scale 0.5-1) + horizontal flip, or the reference resize.

    Args:
        size: Output side or ``(H, W)``.
        augment: ``False`` gives the reference (no augmentation, same as ``voc_eval``).
        interpolation: Image interpolation (``"nearest"`` as in the reference).

    Returns:
        A joint ``v2.Compose``.

    Example:
        >>> t = voc_train(augment=False)
    """
    if not augment:
        return voc_eval(size, interpolation)
    return segmentation_train(size, IMAGENET_MEAN, IMAGENET_STD, (0.5, 1.0), 0.5, 0.0, 0.0, interpolation)


def pets_eval(size: Size = 256, normalize: bool = False) -> v2.Compose:
    """Oxford Pet reference preset (the Pet report): resize to 256x256, values in ``[0, 1]``.

    Args:
        size: Output side or ``(H, W)``.
        normalize: Add ImageNet normalisation (for ImageNet-pretrained encoders); off in the reference.

    Returns:
        A joint ``v2.Compose``.

    Example:
        >>> t = pets_eval()
    """
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize else (None, None)
    return segmentation_eval(size, mean, std, "pil_bilinear")


def pets_train(size: Size = 256, normalize: bool = False, augment: bool = True) -> v2.Compose:
    """Oxford Pet training preset: the reference random horizontal + vertical flips, plus a mild random crop.

    Args:
        size: Output side or ``(H, W)``.
        normalize: Add ImageNet normalisation; off in the reference.
        augment: ``False`` gives the reference flips only (a plain resize, no crop).

    Returns:
        A joint ``v2.Compose``.

    Example:
        >>> t = pets_train()
    """
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if normalize else (None, None)
    if not augment:  # exactly the reference: Pillow's bilinear resize + flips
        return v2.Compose(
            [PILResize(size, "bilinear"), v2.RandomHorizontalFlip(), v2.RandomVerticalFlip()] + _finish(mean, std)
        )
    return segmentation_train(size, mean, std, (0.6, 1.0), 0.5, 0.5, 0.0, "bilinear")


def cifar_train(padding: int = 4) -> v2.Compose:
    """CIFAR-10 reference training preset: RandomCrop(32, padding=4) + RandomHorizontalFlip + normalise.

    Args:
        padding: Zero padding of the random crop.

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = cifar_train()
    """
    return v2.Compose(
        [v2.RandomCrop(32, padding=padding), v2.RandomHorizontalFlip()] + _finish(CIFAR10_MEAN, CIFAR10_STD)
    )


def cifar_eval() -> v2.Compose:
    """CIFAR-10 reference evaluation preset: normalisation only.

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = cifar_eval()
    """
    return v2.Compose(_finish(CIFAR10_MEAN, CIFAR10_STD))


def dogs_train(size: Size = 224) -> v2.Compose:
    """Dog images training preset: random resized crop, flip, colour jitter, ImageNet normalisation.

    Args:
        size: Output side (use 32 for ``custom_cnn``, 192 for ``resfcn18``).

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = dogs_train(192)
    """
    return classification_train(size, IMAGENET_MEAN, IMAGENET_STD)


def dogs_eval(size: Size = 224) -> v2.Compose:
    """Dog images evaluation preset: resize + centre crop, ImageNet normalisation.

    Args:
        size: Output side.

    Returns:
        A ``v2.Compose`` taking the image.

    Example:
        >>> t = dogs_eval(192)
    """
    return classification_eval(size, IMAGENET_MEAN, IMAGENET_STD)


_PRESETS = {
    ("voc", True): voc_train,
    ("voc", False): voc_eval,
    ("pets", True): pets_train,
    ("pets", False): pets_eval,
    ("cifar10", True): cifar_train,
    ("cifar10", False): cifar_eval,
    ("dogs", True): dogs_train,
    ("dogs", False): dogs_eval,
}


def get_preset(dataset: str, train: bool, **kwargs: Any) -> Callable[..., Any]:
    """Look up a named preset: ``get_preset("voc", train=True)`` is ``voc_train()``.

    Args:
        dataset: ``"voc"``, ``"pets"``, ``"cifar10"`` or ``"dogs"``.
        train: Training (augmenting) or evaluation preset.
        **kwargs: Passed to the preset function.

    Returns:
        The transform.

    Raises:
        ValueError: For an unknown dataset name (the message lists the known ones).

    Example:
        >>> t = get_preset("cifar10", train=False)
    """
    key = (dataset.lower(), bool(train))
    if key not in _PRESETS:
        raise ValueError(f"no preset for dataset {dataset!r}; known: {sorted({k for k, _ in _PRESETS})}")
    return _PRESETS[key](**kwargs)
