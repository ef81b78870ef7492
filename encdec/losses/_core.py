"""What every loss shares: the three modes, the target contract of each, and the probabilities, logits and dense
targets the losses compute on, flattened to ``(N, K, S)`` (``K`` channels, ``S`` positions)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MODES", "ModeLoss", "Targets", "as_logits", "check_mode", "class_log_probs", "class_logits", "class_probs",
           "one_vs_rest", "prepare_targets", "zero_loss"]

#: ``"binary"``: ``(N, 1, ...)`` logits, 0/1 targets ``(N, ...)`` or ``(N, 1, ...)``; ``"multiclass"``: ``(N, C, ...)``
#: logits, integer targets ``(N, ...)``; ``"multilabel"``: ``(N, C, ...)`` logits, 0/1 targets ``(N, C, ...)``.
MODES = ("binary", "multiclass", "multilabel")


class Targets(NamedTuple):
    """A batch's targets in the form the losses use.

    ``dense`` holds 0/1 values ``(N, K, S)`` (one-hot in multiclass mode), zero where ignored; ``valid`` is
    ``(N, 1, S)`` in multiclass mode and ``(N, K, S)`` otherwise; ``labels`` are the class indices ``(N, S)``
    (0 where ignored) in multiclass mode, ``None`` otherwise.
    """

    dense: torch.Tensor
    valid: torch.Tensor
    labels: Optional[torch.Tensor]


def check_mode(mode: str, allowed: Sequence[str] = MODES, loss: str = "this loss") -> str:
    """``mode`` itself, or a ``ValueError`` naming the modes ``loss`` takes."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(map(repr, MODES))}")
    if mode not in allowed:
        raise ValueError(f"{loss} is defined for mode {' and '.join(map(repr, allowed))}, not {mode!r}")
    return mode


def _float(x: torch.Tensor) -> torch.Tensor:
    """float32 and float64 as they are; half precision and integers computed in float32."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def zero_loss(logits: torch.Tensor) -> torch.Tensor:
    """A zero that keeps the graph: the loss of a batch with nothing to score (its gradient is zero)."""
    return logits.sum() * 0.0


def _values_outside(target: torch.Tensor, allowed: torch.Tensor) -> list:
    bad = torch.unique(target[allowed.logical_not()])
    return bad.tolist()[:10]


def prepare_targets(
    logits: torch.Tensor, target: torch.Tensor, mode: str, ignore_index: Optional[int], validate: bool = True
) -> Targets:
    """Check ``target`` against the logits for ``mode`` and return it dense, flattened, with its valid mask.

    Raises:
        ValueError: A target shape or target values that do not fit the mode, or an unknown mode.
        TypeError: Float targets in multiclass mode, or a target that is not a tensor.
    """
    check_mode(mode)
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a tensor, got {type(target).__name__}")
    if logits.dim() < 2:
        raise ValueError(f"logits must be (N, C, ...), got shape {tuple(logits.shape)}")
    n, c, spatial = logits.shape[0], logits.shape[1], tuple(logits.shape[2:])
    if mode == "binary" and c != 1:
        raise ValueError(f"binary mode takes one output channel (N, 1, ...), got logits of shape {tuple(logits.shape)}"
                         "; use mode='multiclass' for exclusive classes or 'multilabel' for independent labels")
    if mode == "multilabel":
        expected = [tuple(logits.shape)]
    else:
        expected = [(n, *spatial), (n, 1, *spatial)]
    if tuple(target.shape) not in expected:
        shapes = " or ".join(str(s) for s in expected)
        raise ValueError(f"{mode} mode: target shape {tuple(target.shape)} does not match logits "
                         f"{tuple(logits.shape)} (expected {shapes})")
    ignored = None if ignore_index is None else target == ignore_index
    if mode == "multiclass":
        if target.is_floating_point() or target.is_complex():
            raise TypeError(f"target must hold integer class labels in multiclass mode, got {target.dtype}")
        target = target.reshape(n, -1)
        k = max(2, c)
        if validate:
            allowed = (target >= 0) & (target < k)
            if ignored is not None:
                allowed |= ignored.reshape(n, -1)
            if not bool(allowed.all()):
                valid = f"[0, {k})" + ("" if ignore_index is None else f" or ignore_index={ignore_index}")
                raise ValueError(f"target values {_values_outside(target, allowed)} are outside {valid}")
        keep = torch.ones_like(target, dtype=torch.bool) if ignored is None else ~ignored.reshape(n, -1)
        labels = torch.where(keep, target, torch.zeros_like(target)).long()
        dense = F.one_hot(labels, k).movedim(-1, 1) * keep.unsqueeze(1)
        return Targets(dense.to(_float(logits).dtype), keep.unsqueeze(1), labels)
    target = target.reshape(n, 1 if mode == "binary" else c, -1)
    keep = torch.ones_like(target, dtype=torch.bool) if ignored is None else ~ignored.reshape(target.shape)
    if validate:
        allowed = (target == 0) | (target == 1) | ~keep
        if not bool(allowed.all()):
            bad = _values_outside(target, allowed)
            hint = "; 0/255 masks: divide by 255, or pass ignore_index=255 if 255 marks pixels to leave out" \
                if 255 in bad else ""
            also = "" if ignore_index is None else f" or ignore_index={ignore_index}"
            raise ValueError(f"{mode} mode: target values {bad} are not 0 or 1{also}{hint}")
    dense = torch.where(keep, target, torch.zeros_like(target)).to(_float(logits).dtype)
    return Targets(dense, keep, None)


def _two_class(p1: torch.Tensor) -> torch.Tensor:
    return torch.cat([1.0 - p1, p1], dim=1)


def class_probs(logits: torch.Tensor, mode: str, from_logits: bool) -> torch.Tensor:
    """Probabilities ``(N, K, S)``: sigmoid in binary and multilabel mode, softmax in multiclass mode, where one
    channel means binary logits (background ``1 - sigmoid``); ``from_logits=False`` takes them as given."""
    x = _float(logits).reshape(logits.shape[0], logits.shape[1], -1)
    if mode != "multiclass":
        return torch.sigmoid(x) if from_logits else x
    if x.shape[1] == 1:
        return _two_class(torch.sigmoid(x) if from_logits else x)
    return x.softmax(dim=1) if from_logits else x


def as_logits(probs: torch.Tensor, eps: float) -> torch.Tensor:
    """The logits of probabilities clamped to ``[eps, 1 - eps]``."""
    p = probs.clamp(eps, 1.0 - eps)
    return torch.log(p) - torch.log1p(-p)


def class_logits(logits: torch.Tensor, from_logits: bool, eps: float) -> torch.Tensor:
    """One sigmoid logit per channel ``(N, C, S)``: the logits themselves, or the logits of given probabilities
    clamped to ``[eps, 1 - eps]``."""
    x = _float(logits).reshape(logits.shape[0], logits.shape[1], -1)
    return x if from_logits else as_logits(x, eps)


def one_vs_rest(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: Optional[int], validate: bool = True
) -> Tuple[torch.Tensor, str]:
    """Multiclass targets as the targets of sigmoid losses, and the mode that reads them: one-hot ``(N, C, ...)``
    labels (``ignore_index`` in every channel of an ignored pixel) in multilabel mode, or, for one-channel
    (binary) logits, the 0/1 targets themselves in binary mode."""
    t = prepare_targets(logits, target, "multiclass", ignore_index, validate)
    if logits.shape[1] == 1:
        return target.reshape(logits.shape[0], *logits.shape[2:]), "binary"
    onehot = t.dense.to(torch.long)
    if ignore_index is not None:
        onehot = torch.where(t.valid, onehot, torch.full_like(onehot, ignore_index))
    return onehot.reshape(logits.shape), "multilabel"


def class_log_probs(logits: torch.Tensor, from_logits: bool, eps: float) -> torch.Tensor:
    """Multiclass log-probabilities ``(N, K, S)``: log-softmax of logits (one channel: binary logits), or the log
    of given probabilities clamped to at least ``eps``."""
    x = _float(logits).reshape(logits.shape[0], logits.shape[1], -1)
    if not from_logits:
        return torch.log((_two_class(x) if x.shape[1] == 1 else x).clamp_min(eps))
    if x.shape[1] == 1:
        return torch.cat([F.logsigmoid(-x), F.logsigmoid(x)], dim=1)
    return x.log_softmax(dim=1)


class ModeLoss(nn.Module):
    """A loss module that checks its mode when it is built (a ``ValueError`` naming the modes it takes)."""

    def __init__(self, mode: str, ignore_index: Optional[int], allowed: Sequence[str] = MODES) -> None:
        super().__init__()
        self.mode = check_mode(mode, allowed, type(self).__name__)
        self.ignore_index = ignore_index

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, ignore_index={self.ignore_index}"
