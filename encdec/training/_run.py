"""``Run``: everything one training or evaluation run shares between its steps, in one small object."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

import torch
from torch import Tensor, nn

from .._distributed import DistInfo
from .history import History

__all__ = ["Run", "LossFn"]

LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass
class Run:
    """The state of one ``encdec.fit`` (or ``encdec.evaluate``) run.

    The first group is fixed when the run starts; the last group changes as it goes and is what a checkpoint
    saves besides the model and optimizer.
    """

    model: nn.Module
    net: nn.Module  # the model, or its DistributedDataParallel wrapper
    device: torch.device
    precision: str
    channels_last: bool
    info: DistInfo
    loss_fn: Optional[LossFn] = None
    metrics: Any = None  # template metric object, copied for every pass; None: chosen from the first logits
    ignore_index: Optional[int] = None
    show_bars: bool = False
    show_lines: bool = False  # progress lines within epochs (progress on, rank 0, standard error not a terminal)
    tensorboard: Any = None  # a SummaryWriter, when fit logs to TensorBoard
    optimizer: Optional[torch.optim.Optimizer] = None
    scheduler: Any = None
    interval: str = "epoch"  # when the scheduler steps: "epoch" or "step"
    scaler: Optional[torch.amp.GradScaler] = None
    accumulate_steps: int = 1
    clip_grad_norm: Optional[float] = None
    checkpoint_dir: Optional[Path] = None
    epochs: int = 0
    early_stopping: Optional[int] = None
    data_seed: int = 0  # the training data's order and augmentation follow (data_seed, epoch, index)
    freeze_encoder: Union[bool, int] = False  # as asked (True: the whole run, N: the first N epochs), saved
    encoder_lr: Optional[float] = None  # as asked, saved (the optimizer's groups hold the rate itself)
    freeze: Any = None  # an encdec.training.transfer.EncoderFreeze, when the encoder is frozen for some epochs
    aux: Any = None  # an encdec.training.auxiliary.AuxiliaryHead, when the model has a classification head
    wrap: Optional[Callable[[nn.Module], nn.Module]] = None  # builds `net` from `model` (DDP, compile) again

    history: History = field(default_factory=History)
    epoch: int = 0  # epochs completed
    global_step: int = 0  # optimizer steps taken
    bad_epochs: int = 0  # epochs since the monitored value last improved
    best_state: Optional[Dict[str, Tensor]] = None  # the best weights, kept for early stopping
