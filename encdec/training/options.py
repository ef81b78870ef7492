"""``FitOptions``: the settings of one ``fit`` run in one typed object, checked in one place.

``encdec.fit`` gathers its keyword arguments into a ``FitOptions`` (each field is the ``fit`` argument of that
name, documented there); the helpers that build the run take it whole, a resumed run takes the settings its
checkpoint recorded from it (:meth:`FitOptions.resumed`), and ``encdec train`` builds one from its flags and
checks it before reading any data.

Example:
    >>> options = FitOptions(epochs=3, freeze_encoder=1, encoder_lr=1e-4)
    >>> options.check()
    >>> sorted(k for k, v in options.kwargs().items() if v not in (None, False, "auto"))
    ['accumulate_steps', 'encoder_lr', 'epochs', 'freeze_encoder', 'progress']
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import torch

from .state import resumed_setting
from .transfer import check_encoder_lr, check_freeze_encoder

__all__ = ["FitOptions", "OptimizerArg"]

PathLike = Union[str, "os.PathLike[str]"]
#: An optimizer, or a callable building one over the parameter groups (``encdec.training.transfer.param_groups``).
OptimizerArg = Union[torch.optim.Optimizer, Callable[[List[Dict[str, Any]]], torch.optim.Optimizer], None]


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass
class FitOptions:
    """Every setting of one ``encdec.fit`` run; each field is the ``fit`` argument of the same name.

    Example:
        >>> FitOptions(epochs=2).accumulate_steps
        1
    """

    epochs: int
    optimizer: OptimizerArg = None
    loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None
    scheduler: Any = None
    scheduler_interval: str = "auto"
    metrics: Any = None
    device: Union[str, torch.device] = "auto"
    precision: str = "auto"
    channels_last: Union[bool, str] = "auto"
    accumulate_steps: int = 1
    clip_grad_norm: Optional[float] = None
    checkpoint_dir: Optional[PathLike] = None
    monitor: Optional[str] = None
    early_stopping: Optional[int] = None
    resume: Union[bool, PathLike, None] = None
    overwrite: bool = False
    freeze_encoder: Union[bool, int, None] = None
    encoder_lr: Optional[float] = None
    aux_loss_weight: Optional[float] = None
    seed: Optional[int] = None
    progress: bool = True
    compile: bool = False
    tensorboard: Union[bool, PathLike, None] = False

    def kwargs(self) -> Dict[str, Any]:
        """The options as ``fit`` keyword arguments (objects such as the optimizer are passed, not copied).

        Example:
            >>> FitOptions(epochs=2).kwargs()["epochs"]
            2
        """
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def check(self, val_loader: Any = None, source: Optional[Path] = None) -> None:
        """Name every user error in the options before anything runs (``val_loader``: the one ``fit`` gets;
        ``source``: the checkpoint whose recorded settings these are, named in the message).

        Raises:
            ValueError: A value out of range, or settings that contradict each other.
            TypeError: An optimizer that is neither an optimizer nor a callable.

        Example:
            >>> try:
            ...     FitOptions(epochs=0).check()
            ... except ValueError as error:
            ...     print(error)
            epochs must be a positive integer, got 0
        """
        if not _positive_int(self.epochs):
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not _positive_int(self.accumulate_steps):
            raise ValueError(f"accumulate_steps must be a positive integer, got {self.accumulate_steps!r}")
        clip = self.clip_grad_norm
        if clip is not None and not (isinstance(clip, (int, float)) and clip > 0):
            raise ValueError(f"clip_grad_norm must be a positive number or None, got {clip!r}")
        if self.early_stopping is not None and not _positive_int(self.early_stopping):
            raise ValueError(f"early_stopping (patience in epochs) must be a positive integer or None, "
                             f"got {self.early_stopping!r}")
        if self.resume is True and self.checkpoint_dir is None:
            raise ValueError("resume=True continues from checkpoint_dir/last.pt, so it needs checkpoint_dir=...")
        monitor = self.monitor
        if monitor is not None and not isinstance(monitor, str):
            raise ValueError(f"monitor must be a History key such as 'val_miou' or 'val_loss', got {monitor!r}")
        if monitor is not None and monitor.startswith("val_") and val_loader is None:
            raise ValueError(f"monitor={monitor!r} needs a val_loader; pass one, or monitor a train_ key")
        self._check_transfer(source)

    def _check_transfer(self, source: Optional[Path]) -> None:
        optimizer = self.optimizer
        if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer) and not callable(optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer or a callable taking the parameter groups, "
                            f"got {type(optimizer).__name__}")
        if self.encoder_lr is not None and isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError("encoder_lr gives the encoder its own parameter group, which an optimizer object "
                             "already built cannot get; pass optimizer=lambda groups: YourOptimizer(groups, ...) "
                             "instead, or build yours over encdec.training.transfer.param_groups(model, "
                             "encoder_lr=...)")
        try:
            check_freeze_encoder(self.freeze_encoder)
            check_encoder_lr(self.encoder_lr)
        except ValueError as error:
            raise ValueError(f"cannot resume from {source}: {error}" if source is not None else str(error)) from None

    def resumed(self, recorded: Dict[str, Any], source: Optional[Path]) -> FitOptions:
        """These options with the settings a resumed run must keep taken from its checkpoint (``recorded``, the
        checkpoint's ``settings``; ``source``: its path, ``None`` for a new run): the encoder freeze and, unless
        the optimizer is an object holding its own groups, the encoder's learning rate. A value given here that
        differs from the recorded one is refused.

        Example:
            >>> FitOptions(epochs=4).resumed({"freeze_encoder": 2}, Path("last.pt")).freeze_encoder
            2
            >>> FitOptions(epochs=4, freeze_encoder=0).resumed({}, None).freeze_encoder
            False
        """
        freeze = self.freeze_encoder
        freeze = False if freeze is not True and freeze == 0 else freeze  # 0 epochs: no freeze
        freeze = resumed_setting("freeze_encoder", freeze, recorded, False, source)
        encoder_lr = self.encoder_lr
        if not isinstance(self.optimizer, torch.optim.Optimizer):
            encoder_lr = None if encoder_lr is None else float(encoder_lr)
            encoder_lr = resumed_setting("encoder_lr", encoder_lr, recorded, None, source)
        options = dataclasses.replace(self, freeze_encoder=freeze, encoder_lr=encoder_lr)
        options._check_transfer(source)
        return options
