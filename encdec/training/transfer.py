"""Transfer learning: a model's encoder, frozen for some epochs (its parameters *and* its normalisation
statistics), and its own learning rate.

``encdec.fit(freeze_encoder=..., encoder_lr=...)`` and ``encdec train --freeze-encoder [N] --encoder-lr LR`` use
these; :func:`param_groups` also builds the optimizer groups for an optimizer of your own.

Why both parameters and statistics: ``requires_grad_(False)`` alone keeps the optimizer from moving the weights,
but a BatchNorm layer in train mode still updates its running mean and variance on every batch, so the encoder
that comes out differs from the one that went in. A frozen encoder here keeps its normalisation layers in eval
mode during the frozen epochs (and only those: they train again after the release).

Example:
    >>> import encdec
    >>> model = encdec.resnet34_unet()
    >>> groups = param_groups(model, encoder_lr=1e-4)
    >>> [g["name"] for g in groups], groups[1]["lr"]
    (['decoder', 'encoder'], 0.0001)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from torch import nn

from ..models import ImageClassifier

__all__ = ["ENCODER_GROUP", "EncoderFreeze", "check_freeze_encoder", "encoder_of", "param_groups"]

#: The ``name`` of the optimizer parameter group that holds the encoder's parameters.
ENCODER_GROUP = "encoder"

FreezeSetting = Union[bool, int, None]


def _model_name(model: nn.Module) -> str:
    return (getattr(model, "encdec_config", None) or {}).get("architecture", type(model).__name__)


def encoder_of(model: nn.Module) -> nn.Module:
    """The encoder of ``model``: its ``encoder`` submodule (every segmentation model on the encoder contract has
    one: ``unet``, ``fpn``, ``resnet34_unet``, ...), or a classifier's ``features`` (everything before the pooling
    and the head).

    Raises:
        ValueError: ``model`` has neither; the message names the model.

    Example:
        >>> import encdec
        >>> type(encoder_of(encdec.unet(widths=(4, 8, 16, 32, 64)))).__name__
        'UNetEncoder'
        >>> try:
        ...     encoder_of(encdec.resfcn18())
        ... except ValueError as error:
        ...     print(str(error)[:48])
        resfcn18 has no encoder to freeze or to give its
    """
    encoder = getattr(model, "encoder", None)
    if isinstance(encoder, nn.Module):
        return encoder
    if isinstance(model, ImageClassifier):
        return model.features
    raise ValueError(
        f"{_model_name(model)} has no encoder to freeze or to give its own learning rate: freeze_encoder and "
        "encoder_lr (--freeze-encoder, --encoder-lr) work on models with an `encoder` submodule (the segmentation "
        "models on the encoder contract, e.g. unet, fpn, resnet34_unet) and on classifiers (their `features`); "
        f"freeze layers of {_model_name(model)} yourself with requires_grad_(False)"
    )


def param_groups(model: nn.Module, *, encoder_lr: Optional[float] = None) -> List[Dict[str, Any]]:
    """Optimizer parameter groups over the trainable parameters of ``model``.

    Without ``encoder_lr``: one group. With it: the decoder and head (named ``"decoder"``, at the optimizer's
    learning rate, first, so ``param_groups[0]["lr"]`` stays the main rate) and the encoder (named
    ``"encoder"``, at ``encoder_lr``). Pass them to any optimizer: ``torch.optim.SGD(param_groups(model,
    encoder_lr=1e-4), lr=1e-2)``.

    Raises:
        ValueError: No trainable parameters, a model without an encoder (:func:`encoder_of`), an encoder without
            trainable parameters, or an ``encoder_lr`` that is not a positive number.

    Example:
        >>> import torch, encdec
        >>> model = encdec.unet(encoder="resnet18")
        >>> optimizer = torch.optim.SGD(param_groups(model, encoder_lr=1e-4), lr=1e-2)
        >>> [group["lr"] for group in optimizer.param_groups]
        [0.01, 0.0001]
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError(f"{_model_name(model)} has no trainable parameters (all have requires_grad=False)")
    if encoder_lr is None:
        return [{"params": trainable}]
    check_encoder_lr(encoder_lr)
    inside = {id(p) for p in encoder_of(model).parameters()}
    encoder = [p for p in trainable if id(p) in inside]
    rest = [p for p in trainable if id(p) not in inside]
    if not encoder:
        raise ValueError(f"encoder_lr={encoder_lr!r}: the encoder of {_model_name(model)} has no trainable "
                         "parameters (all have requires_grad=False)")
    groups: List[Dict[str, Any]] = [{"params": rest, "name": "decoder"}] if rest else []
    return groups + [{"params": encoder, "lr": float(encoder_lr), "name": ENCODER_GROUP}]


def check_encoder_lr(encoder_lr: Any) -> None:
    """Refuse an ``encoder_lr`` that is not ``None`` or a positive number.

    Example:
        >>> check_encoder_lr(1e-4)
    """
    if encoder_lr is None:
        return
    if isinstance(encoder_lr, bool) or not isinstance(encoder_lr, (int, float)) or not 0 < encoder_lr < float("inf"):
        raise ValueError(f"encoder_lr must be a positive number (the encoder's learning rate) or None, "
                         f"got {encoder_lr!r}")


def check_freeze_encoder(value: Any, where: str = "freeze_encoder") -> None:
    """Refuse a ``freeze_encoder`` that is not ``True`` / ``False`` / ``None`` or a number of epochs (0 or more).

    Example:
        >>> check_freeze_encoder(3)
        >>> try:
        ...     check_freeze_encoder(-1)
        ... except ValueError as error:
        ...     print(error)
        freeze_encoder must be True (the whole run), a number of epochs (0 or more) or False, got -1
    """
    if value is None or isinstance(value, bool) or (isinstance(value, int) and value >= 0):
        return
    raise ValueError(f"{where} must be True (the whole run), a number of epochs (0 or more) or False, got {value!r}")


def _holds_statistics(module: nn.Module) -> bool:
    """BatchNorm (any dimension, synchronised or lazy) and InstanceNorm layers: the layers whose train mode
    updates running statistics."""
    return isinstance(module, nn.modules.batchnorm._NormBase)


@dataclass
class EncoderFreeze:
    """The encoder freeze of one run: frozen for the first ``epochs`` epochs (``None``: the whole run).

    Only encoder parameters that were trainable when the run started are frozen and released, so parameters a
    user froze by hand stay frozen.

    Example:
        >>> import encdec
        >>> model = encdec.unet(widths=(4, 8, 16, 32, 64))
        >>> freeze = EncoderFreeze.of(model, 2)
        >>> freeze.set(freeze.frozen_in(0)), any(p.requires_grad for p in model.encoder.parameters())
        (True, False)
        >>> freeze.set(freeze.frozen_in(2)), all(p.requires_grad for p in model.encoder.parameters())
        (True, True)
    """

    encoder: nn.Module
    epochs: Optional[int]
    trainable: List[nn.Parameter] = field(default_factory=list)
    frozen: bool = False

    @classmethod
    def of(cls, model: nn.Module, setting: FreezeSetting) -> Optional[EncoderFreeze]:
        """The freeze ``setting`` asks for (``True``: the whole run, ``N``: the first N epochs), or ``None`` for no
        freeze (``False``, ``None`` or 0)."""
        check_freeze_encoder(setting)
        if setting is None or setting is False or setting == 0:
            return None
        encoder = encoder_of(model)
        return cls(encoder, None if setting is True else int(setting),
                   [p for p in encoder.parameters() if p.requires_grad])

    def frozen_in(self, epoch: int) -> bool:
        """Whether the encoder is frozen during ``epoch`` (0-based)."""
        return self.epochs is None or epoch < self.epochs

    def set(self, frozen: bool) -> bool:
        """Freeze or release the parameters; ``True`` when that changed anything."""
        if frozen == self.frozen:
            return False
        for parameter in self.trainable:
            parameter.requires_grad_(not frozen)
        self.frozen = frozen
        return True

    def hold_statistics(self) -> None:
        """Put the encoder's normalisation layers in eval mode, so a training pass leaves their running
        statistics as they are (called after ``model.train()`` in every frozen epoch)."""
        if self.frozen:
            for module in self.encoder.modules():
                if _holds_statistics(module):
                    module.eval()

    def release(self, training: bool) -> None:
        """Make the frozen parameters trainable again and the normalisation layers follow the model's mode
        (``training``): how ``fit`` leaves the model, however the run ended."""
        self.set(False)
        for module in self.encoder.modules():
            if _holds_statistics(module):
                module.train(training)
