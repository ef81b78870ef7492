"""Sizes, repetition counts and time budgets of the three run modes: full, ``--quick`` and ``--tiny``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

__all__ = ["Settings", "FULL", "QUICK", "TINY", "GROUPS", "ALL_BUILDERS", "FAST_PATH_MODELS", "settings_for"]

#: Benchmark groups in run order (``--only`` takes a comma-separated subset).
GROUPS = ("builders", "fast_path", "paths", "tiling", "smp", "encoders", "fit", "metrics", "colorize", "voc", "loading")

#: Every registered reference builder, cheapest first.
ALL_BUILDERS = (
    "custom_cnn", "resnet18_classifier", "resfcn18", "resnet50_cifar", "vgg16_cifar",
    "resnet34_unet", "resnet50_unet", "unet", "unet_pet",
)  # fmt: skip

#: The models the fast-path goals name.
FAST_PATH_MODELS = ("resnet34_unet", "unet", "resnet50_unet")


@dataclass(frozen=True)
class Settings:
    """Everything that differs between run modes.

    Attributes:
        mode: ``"full"``, ``"quick"`` or ``"tiny"``.
        seg_size: Side of the square images for the segmentation builders (builder table, FLOP fractions).
        seg_batch: Batch for the segmentation builders.
        fast_size: Side for the fast-path, smp and ``fit`` comparisons.
        fast_batch: Batch for the smp and ``fit`` comparisons.
        fast_path_batch: Batch for the fast-path comparison. bf16's gain grows with the batch (the reference
            resnet34_unet trains x1.6 faster in channels_last + bf16 at batch 2 and about x2.9 at batch 8 on
            the 2-core machine), so this is a realistic training batch rather than the smallest one.
        fit_batches: Batches per timed ``fit`` epoch (and per timed reference loop).
        fit_overhead_batches: Batches per timed epoch in the ``fit`` vs hand-written loop comparison.
        pretrain_steps: ``fit`` steps (on images of half the side) before the fast-path comparison, so the
            agreement of the bf16 prediction is measured on a trained model rather than on chaotic random weights.
        agreement_images: SyntheticShapes images whose bf16 and fp32 labels are compared.
        tiling_steps: ``fit`` steps (batches of 16 small SyntheticShapes images) of the models whose tiled and
            untiled predictions are compared: enough for confident predictions, so that the comparison is not
            decided by near ties.
        cls_batch: Batch for the classifiers.
        resnet18_size: Side of the ``resnet18_classifier`` inputs.
        resfcn_input: ``input_size`` of ``resfcn18`` (the reference 192 holds 1.8 GB of weights).
        matmul_n: Side of the square fp32 matrix product that measures the machine's matmul peak.
        warmup: Untimed calls of each variant.
        min_reps: Repetitions always timed.
        max_reps: Repetitions at most.
        max_seconds: Per-comparison budget after which no new repetition starts.
        min_call_seconds: Cheap calls are repeated inside one measurement to last about this long.
        metric_shape: ``(N, H, W)`` of the metric benchmark.
        colorize_side: Side of the mask ``colorize`` is timed on (the reference loop runs on 64x64).
        voc_images: Images in the generated VOC tree.
        builders: Builders in the builder table.
        fast_path_models: Models of the fast-path comparison.
        details: Also time the explanatory extra variants (e.g. the reference with channels_last + bf16 alone).
    """

    mode: str
    seg_size: int
    seg_batch: int
    fast_size: int
    fast_batch: int
    fast_path_batch: int
    fit_batches: int
    fit_overhead_batches: int
    pretrain_steps: int
    agreement_images: int
    tiling_steps: int
    cls_batch: int
    resnet18_size: int
    resfcn_input: int
    matmul_n: int
    warmup: int
    min_reps: int
    max_reps: int
    max_seconds: float
    min_call_seconds: float
    metric_shape: Tuple[int, int, int]
    colorize_side: int
    voc_images: int
    builders: Tuple[str, ...] = ALL_BUILDERS
    fast_path_models: Tuple[str, ...] = FAST_PATH_MODELS
    details: bool = False

    @property
    def quick(self) -> bool:
        """Whether this is a reduced run (``--quick`` or ``--tiny``)."""
        return self.mode != "full"

    def timing(self, **overrides: Any) -> Dict[str, Any]:
        """Keyword arguments for :func:`benchmarks._timing.interleave`, with ``overrides`` applied.

        Example:
            >>> QUICK.timing(max_reps=9)["max_reps"]
            9
        """
        kwargs: Dict[str, Any] = dict(warmup=self.warmup, min_reps=self.min_reps, max_reps=self.max_reps,
                                      max_seconds=self.max_seconds, min_call_seconds=self.min_call_seconds)
        kwargs.update(overrides)
        return kwargs

    def as_dict(self) -> Dict[str, Any]:
        """The settings as plain JSON-able values."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


FULL = Settings(
    mode="full",
    seg_size=256, seg_batch=2, fast_size=256, fast_batch=2, fast_path_batch=8, fit_batches=1, fit_overhead_batches=6,
    pretrain_steps=40, agreement_images=8, tiling_steps=256, cls_batch=32, resnet18_size=224, resfcn_input=96,
    matmul_n=2048,
    warmup=1, min_reps=5, max_reps=7, max_seconds=120.0, min_call_seconds=0.3,
    metric_shape=(16, 256, 256), colorize_side=512, voc_images=48, details=True,
)

QUICK = Settings(
    mode="quick",
    seg_size=64, seg_batch=2, fast_size=128, fast_batch=2, fast_path_batch=4, fit_batches=2, fit_overhead_batches=4,
    pretrain_steps=16, agreement_images=4, tiling_steps=96, cls_batch=16, resnet18_size=128, resfcn_input=64,
    matmul_n=2048,
    warmup=1, min_reps=3, max_reps=4, max_seconds=10.0, min_call_seconds=0.2,
    metric_shape=(16, 256, 256), colorize_side=256, voc_images=12,
)

#: For the smoke test: seconds, not minutes; the numbers mean nothing.
TINY = Settings(
    mode="tiny",
    seg_size=32, seg_batch=1, fast_size=64, fast_batch=2, fast_path_batch=2, fit_batches=1, fit_overhead_batches=1,
    pretrain_steps=1, agreement_images=2, tiling_steps=2, cls_batch=2, resnet18_size=32, resfcn_input=16,
    matmul_n=256,
    warmup=0, min_reps=1, max_reps=1, max_seconds=0.0, min_call_seconds=0.0,
    metric_shape=(2, 32, 32), colorize_side=32, voc_images=2,
    builders=("custom_cnn",), fast_path_models=("resnet50_unet",),
)


def settings_for(quick: bool, tiny: bool = False, overrides: Optional[Dict[str, Any]] = None) -> Settings:
    """The settings of a mode, with ``overrides`` (field -> value) applied.

    Example:
        >>> settings_for(True).seg_size, settings_for(False).seg_size, settings_for(True, tiny=True).mode
        (64, 256, 'tiny')
    """
    base = TINY if tiny else QUICK if quick else FULL
    return dataclasses.replace(base, **(overrides or {}))
