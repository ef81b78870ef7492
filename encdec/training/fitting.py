"""``fit``: train a model with validation, checkpoints, exact resume, mixed precision and ``torchrun``.

``fit`` reads top to bottom like a recipe; its arguments are gathered in one ``FitOptions``
(``encdec.training.options``, checked there), and each step it names lives in a small helper here or in
``encdec.training._steps`` (one pass over a loader) and ``encdec.training.state`` (checkpoints).

Distributed training:
    Launch the same script with ``torchrun``; ``fit`` reads ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` from the
    environment, initialises the process group (``gloo`` on CPU, ``nccl`` on CUDA), wraps the model in
    ``torch.nn.parallel.DistributedDataParallel``, shards the training data with a
    ``torch.utils.data.DistributedSampler`` (the validation data with a non-padding shard, so every sample
    is counted once), all-reduces losses and metric counts, and lets only rank 0 print and write files::

        # one machine, 4 processes (CPU: gloo; GPUs: one process per GPU, nccl)
        torchrun --standalone --nproc_per_node=4 train.py

        # two machines, 8 GPUs each: run on every machine, with the first machine's address
        torchrun --nnodes=2 --nproc_per_node=8 --node_rank=0 \\
                 --rdzv_backend=c10d --rdzv_endpoint=10.0.0.1:29500 train.py   # node_rank=1 on the other

    ``batch_size`` of the loaders is per process. Without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing changes.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import _distributed
from .._distributed import DistInfo
from ..atomic import ensure_writable_dir
from ..layout import choose_channels_last
from ..runtime import check_channels_last, compile_module, resolve_device, resolve_precision
from ._data import batch_shape, reproducible_loader, set_data_epoch
from ._defaults import dataset_attr, default_loss, default_optimizer, is_plateau, mode_for, pick_monitor
from ._defaults import scheduler_interval as resolve_interval
from ._progress import bar, format_record, log
from ._run import Run
from ._steps import evaluate_epoch, train_epoch
from ._tensorboard import open_writer, write_record
from .auxiliary import AuxiliaryHead
from .history import History
from .options import FitOptions, OptimizerArg
from .seeding import seed_everything
from .state import LAST, claim_run_folder, recorded_settings, resume_run, save_run
from .transfer import ENCODER_GROUP, EncoderFreeze, param_groups

__all__ = ["fit"]

PathLike = Union[str, "os.PathLike[str]"]


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: Optional[DataLoader] = None,
    *,
    epochs: int,
    optimizer: OptimizerArg = None,
    loss: Optional[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = None,
    scheduler: Any = None,
    scheduler_interval: str = "auto",
    metrics: Any = None,
    device: Union[str, torch.device] = "auto",
    precision: str = "auto",
    channels_last: Union[bool, str] = "auto",
    accumulate_steps: int = 1,
    clip_grad_norm: Optional[float] = None,
    checkpoint_dir: Optional[PathLike] = None,
    monitor: Optional[str] = None,
    early_stopping: Optional[int] = None,
    resume: Union[bool, PathLike, None] = None,
    overwrite: bool = False,
    freeze_encoder: Union[bool, int, None] = None,
    encoder_lr: Optional[float] = None,
    aux_loss_weight: Optional[float] = None,
    seed: Optional[int] = None,
    progress: bool = True,
    compile: bool = False,
    tensorboard: Union[bool, PathLike, None] = False,
) -> History:
    """Train ``model`` for ``epochs`` epochs, validating after each, and return the ``History``.

    The loop: per batch, forward under autocast, loss in float32, backward (scaled under fp16), and every
    ``accumulate_steps`` batches an optimizer step (unscale, clip, step, update); then validation under
    ``torch.inference_mode``, the scheduler step, checkpoints and early stopping. ``fit`` switches train/eval
    modes itself and moves the model to ``device``; the model is trained in place.

    Args:
        model: A segmentation model (logits ``(N, C, H, W)``) or classifier (logits ``(N, C)``).
        train_loader: Yields ``(images, targets)`` batches. Every sample is seen each epoch unless it was built
            with ``drop_last=True``; a last batch of a single sample joins the batch before it (said once).
        val_loader: Same for validation; ``None`` skips validation.
        epochs: Total number of epochs (a resumed run continues up to this number).
        optimizer: Defaults to ``Adam(lr=1e-3)`` over the trainable parameters, with ``fused=True`` on CPU and CUDA
            (pass ``fused=True`` to your own Adam/AdamW/SGD too: on CPU the fused step is about 4x faster). A
            callable such as ``lambda groups: torch.optim.SGD(groups, lr=0.01)`` is called with the parameter
            groups (``encdec.training.transfer.param_groups``: two groups with ``encoder_lr``).
        loss: ``loss(logits, targets) -> scalar``. Defaults to cross entropy ignoring the dataset's
            ``ignore_index`` (e.g. 255 for VOC) when the dataset has one.
        scheduler: An LR scheduler bound to ``optimizer``, or a callable ``f(optimizer) -> scheduler`` such as a
            scheduler class or a ``lambda`` (handy with the default optimizer). ``ReduceLROnPlateau`` is stepped
            once per epoch with the monitored value, so its ``mode`` must match (``"max"`` for ``val_miou``).
        scheduler_interval: ``"auto"`` steps ``OneCycleLR`` and ``CyclicLR`` after every optimizer step and
            every other scheduler once per epoch; ``"step"`` or ``"epoch"`` force one.
        metrics: An object with ``update(logits, targets)``, ``compute() -> dict`` and ``reset()`` (and
            ``sync()`` for distributed runs); copied for training and validation. Defaults to
            ``encdec.metrics.SegmentationMetrics`` or ``encdec.metrics.ClassificationMetrics`` by the
            shape of the logits. Training metrics are accumulated from the training forward passes (no second pass).
        device: ``"auto"`` (CUDA, then MPS, then CPU), or any torch device.
        precision: ``"fp32"``, ``"bf16"`` (autocast; CPUs with native bfloat16, or CUDA), ``"fp16"`` (CUDA, with a
            gradient scaler), or ``"auto"``: the fastest safe one (see ``encdec.runtime.resolve_precision``).
        channels_last: Channels-last memory format for model and inputs. ``"auto"``: a fixed rule
            (``encdec.runtime.channels_last_rule``): on for conv nets on CUDA and in bf16 on the CPU; in fp32
            on the CPU, on for batches of at least 256x256 pixels on AVX-512 CPUs and off otherwise (NCHW trained
            faster on AVX2 CPUs). Nothing is timed, so a seeded run gives the same weights however busy the
            machine is. ``"measure"``: time a forward and backward step of a copy of the model in each layout on
            a batch of the training data's shape and keep the faster (see ``encdec.tune`` to measure once and
            pass the answer to later runs). The choice is saved in the checkpoint and a resumed run uses it
            again, so resuming stays exact. Pass ``True`` / ``False`` to decide yourself.
        accumulate_steps: Batches whose gradients are summed (each loss divided by the group size) before one
            optimizer step; a trailing partial group at the end of an epoch is stepped too.
        clip_grad_norm: Clip the global gradient norm to this value before each optimizer step.
        checkpoint_dir: Where to write ``last.pt`` (every epoch), ``best.pt`` and ``best.safetensors`` (when the
            monitored value improves) and ``history.json``, all atomically. Checked for writability first; a folder
            holding another run's files is refused unless ``resume`` or ``overwrite`` is set.
        monitor: The History key that decides "best" and early stopping. Defaults to ``val_miou`` (segmentation),
            ``val_accuracy`` (classification), or ``val_loss`` / ``train_loss`` when there is nothing else. Keys
            containing ``loss`` are minimised, all others maximised.
        early_stopping: Patience: stop after this many epochs without improvement of ``monitor``. The best
            epoch's weights are restored into ``model`` however training ends (finished, stopped, or an error).
        resume: ``True``: continue from ``checkpoint_dir/last.pt`` if it exists (start fresh otherwise); a path:
            continue from that checkpoint. Restores model, optimizer, scheduler, grad scaler, epoch and step,
            history, early-stopping state and the Python / NumPy / torch RNG states (of every rank), so the result
            equals an uninterrupted run, with or without DataLoader workers (persistent or not): the training data's
            shuffle order follows ``(seed, epoch)`` and each sample is read with the global generators seeded from
            ``(seed, epoch, index)``. A checkpoint of a different model or optimizer is refused. In multi-node runs
            ``checkpoint_dir`` must be on a filesystem all nodes share.
        overwrite: Replace the run in ``checkpoint_dir``: its ``last.pt``, ``best.pt``, ``best.safetensors``,
            ``history.json``, ``metrics.csv`` and ``tensorboard`` folder are removed first (other files stay).
        freeze_encoder: Transfer learning: ``True`` keeps the encoder (the model's ``encoder``, a classifier's
            ``features``) frozen for the whole run, ``N`` for the first N epochs, after which it trains too.
            Frozen means its parameters get no gradient (so no optimizer step, weight decay or momentum moves
            them) and its BatchNorm layers stay in eval mode (so their running statistics do not move either).
            A model without an encoder is refused by name. ``None``: no freeze, or a resumed run's setting.
        encoder_lr: The encoder's own learning rate: the default optimizer (or a callable ``optimizer``) gets two
            parameter groups, the decoder and head at the optimizer's rate and the encoder at this one; a
            scheduler scales both. Not with an optimizer object (build its groups with ``param_groups``).
            ``freeze_encoder`` and ``encoder_lr`` are saved in the checkpoint, and a resumed run uses them again
            (a different value is refused), so a run resumed in the middle of a freeze ends with the same weights.
        aux_loss_weight: Trains the model's classification head (``aux_params``) beside the masks, its binary
            cross-entropy against the classes present in each image's mask times this weight added to the loss
            (see ``encdec.training.auxiliary``). ``None``: the head, if any, is left as it is (a warning says so).
        seed: Calls ``encdec.seed_everything`` (``seed + rank`` in distributed runs) before training, and seeds
            the training data's order and augmentation (without it they are drawn once and saved in the
            checkpoints). Build the model after seeding too if initial weights should repeat.
        progress: tqdm bars (epochs and batches, with loss and images/s) on a terminal; otherwise one line per
            epoch and, within epochs, a line every 30 seconds with the batch, loss, images/s and the epoch's time
            left. ``False`` prints nothing. Only rank 0 prints.
        tensorboard: Log every number of each epoch's record to TensorBoard (``True``: into
            ``checkpoint_dir/tensorboard``; or a folder). Needs the ``tensorboard`` package (the extra of that name).
        compile: Train through ``torch.compile`` (inductor); the first steps compile for seconds to minutes.
            Without a C++ compiler, or if compiling fails, it warns and trains uncompiled.

    Returns:
        The History (also written to ``checkpoint_dir/history.json``).

    Raises:
        NonFiniteLossError: The loss became NaN/inf; the message names the epoch, the step and the checkpoint
            to resume from.
        ValueError: An argument is out of range, names an unknown option, or a resume checkpoint does not match.
        PermissionError: ``checkpoint_dir`` cannot be written (raised before training starts).

    Example:
        >>> import torch, encdec
        >>> from torch.utils.data import DataLoader
        >>> from encdec.datasets import SyntheticShapes
        >>> train = DataLoader(SyntheticShapes(n=16, size=32), batch_size=8, shuffle=True)
        >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
        >>> history = encdec.fit(model, train, train, epochs=1, progress=False, seed=0)
        >>> len(history), history.monitor
        (1, 'val_miou')
    """
    options = FitOptions(
        epochs=epochs, optimizer=optimizer, loss=loss, scheduler=scheduler, scheduler_interval=scheduler_interval,
        metrics=metrics, device=device, precision=precision, channels_last=channels_last,
        accumulate_steps=accumulate_steps, clip_grad_norm=clip_grad_norm, checkpoint_dir=checkpoint_dir,
        monitor=monitor, early_stopping=early_stopping, resume=resume, overwrite=overwrite,
        freeze_encoder=freeze_encoder, encoder_lr=encoder_lr, aux_loss_weight=aux_loss_weight, seed=seed,
        progress=progress, compile=compile,
        tensorboard=tensorboard,
    )
    options.check(val_loader)
    device = resolve_device(options.device)
    precision = resolve_precision(options.precision, device)
    check_channels_last(options.channels_last)  # a bad value is refused before any work
    info = _distributed.setup(device.type)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    run: Optional[Run] = None
    try:
        # where checkpoints go and where the run resumes from, checked before any work
        folder = Path(options.checkpoint_dir) if options.checkpoint_dir is not None else None
        if folder is not None and info.is_main:
            ensure_writable_dir(folder, option="checkpoint_dir", fallback=", or checkpoint_dir=None to train "
                                "without checkpoints")
        _distributed.barrier(info)
        resume_from = _resume_point(options.resume, folder)
        if folder is not None:
            claim_run_folder(folder, resume=options.resume, overwrite=options.overwrite, remove=info.is_main)
        recorded = recorded_settings(resume_from)
        options = options.resumed(recorded, resume_from)  # the encoder freeze and learning rate of a resumed run
        freeze = EncoderFreeze.of(model, options.freeze_encoder)  # a model without an encoder is refused here
        aux = AuxiliaryHead.of(model, options.aux_loss_weight)  # before the model is wrapped (DDP)
        if options.seed is not None:
            seed_everything(int(options.seed) + info.rank)
        use_channels_last = _layout(options.channels_last, model, device, precision, train_loader, recorded, info)

        # the model on its device, optimizer, scheduler, loss and scaler, sharded data
        run = _start_run(model, train_loader, options, device, precision, use_channels_last, info, folder)
        run.freeze, run.aux = freeze, aux
        run.tensorboard = open_writer(options.tensorboard, folder, info.is_main)
        run.history = History(options.monitor, mode_for(options.monitor) if options.monitor else None)
        drawn = int(options.seed) if options.seed is not None else int(torch.randint(2**31, ()).item())
        run.data_seed = _distributed.gather_objects(drawn, info)[0]  # every rank shards and shuffles alike
        train_loader = _distributed.shard_loader(train_loader, info, train=True, seed=run.data_seed)
        train_loader = reproducible_loader(train_loader, run.data_seed)
        if getattr(getattr(train_loader, "batch_sampler", None), "folds", False):
            size = train_loader.batch_sampler.batch_size
            log(info, options.progress, f"note: each epoch's last batch holds {size + 1} samples: the one sample "
                "left over joins it, since BatchNorm cannot train on a batch of one (pass drop_last=True to leave "
                "it out)")
        val_loader = _distributed.shard_loader(val_loader, info, train=False, seed=run.data_seed)
        loaders = [train_loader, val_loader]
        if resume_from is not None:
            resume_run(run, resume_from, loaders, options.monitor)
            log(info, options.progress, f"resumed from {resume_from} after epoch {run.epoch}")

        # the epochs: train, validate, judge, checkpoint, report
        epoch_bar = bar(options.epochs, "epochs", run.show_bars, leave=True)
        if epoch_bar is not None:
            epoch_bar.update(run.epoch)
        while run.epoch < options.epochs:
            try:
                record = _run_epoch(run, train_loader, val_loader)
            except KeyboardInterrupt:
                _say_where_to_resume(run)
                raise
            improved, stop = _judge_epoch(run, record)
            save_run(run, loaders, improved)
            _report(run, record, epoch_bar, options.progress)
            if stop:
                history = run.history
                log(info, options.progress, f"early stopping after epoch {run.epoch}: {history.monitor} has not "
                    f"improved for {options.early_stopping} epochs (best {history.best_value:.4f} at epoch "
                    f"{history.best_epoch})")
                break
        if epoch_bar is not None:
            epoch_bar.close()
        return run.history
    finally:
        if run is not None and run.freeze is not None:
            run.freeze.release(model.training)  # the model leaves fit trainable, however the run ended
        if run is not None and run.aux is not None:
            run.aux.release()
        if run is not None and run.tensorboard is not None:
            run.tensorboard.close()
        if run is not None and options.early_stopping is not None and run.best_state is not None:
            model.load_state_dict(run.best_state)
        _distributed.teardown(info)


def _resume_point(resume: Union[bool, PathLike, None], folder: Optional[Path]) -> Optional[Path]:
    """The checkpoint to resume from: ``folder/last.pt`` for ``resume=True`` (if it exists), or the path given."""
    if resume is True:
        last = folder / LAST  # type: ignore[operator]
        return last if last.is_file() else None
    if resume is None or resume is False:
        return None
    path = Path(resume)  # type: ignore[arg-type]
    if not path.is_file():
        raise FileNotFoundError(f"resume={str(resume)!r}: no such checkpoint file")
    return path


def _layout(channels_last: Union[bool, str], model: nn.Module, device: torch.device, precision: str,
            train_loader: Any, recorded: Dict[str, Any], info: DistInfo) -> bool:
    """The memory layout of this run: as asked, as recorded in the checkpoint resumed from, by the layout rule for
    the training data's batch shape (``"auto"``), or measured (``"measure"``); rank 0's answer for every rank."""
    if isinstance(channels_last, bool):
        return channels_last
    if isinstance(recorded.get("channels_last"), bool):
        return recorded["channels_last"]
    chosen = None
    if info.rank == 0:  # one process decides (and, for "measure", times); the others take its answer
        chosen = choose_channels_last(channels_last, model, device, precision, batch_shape(train_loader), train=True)
    return bool(_distributed.gather_objects(chosen, info)[0])


def _start_run(model: nn.Module, train_loader: Any, options: FitOptions, device: torch.device, precision: str,
               channels_last: bool, info: DistInfo, folder: Optional[Path]) -> Run:
    """Move the model to its device and build what training needs around it."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = options.optimizer
    if not isinstance(optimizer, torch.optim.Optimizer):
        groups = param_groups(model, encoder_lr=options.encoder_lr)
        optimizer = default_optimizer(groups, device) if optimizer is None else optimizer(groups)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer=... was called with the parameter groups and returned "
                            f"{type(optimizer).__name__}, not a torch.optim.Optimizer")
    scheduler = options.scheduler
    if scheduler is not None and callable(scheduler) and (isinstance(scheduler, type) or not hasattr(scheduler,
                                                                                                      "step")):
        scheduler = scheduler(optimizer)  # a scheduler class or f(optimizer)
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError(
            "scheduler is bound to a different optimizer than the one fit uses; pass that optimizer as "
            "optimizer=..., or pass scheduler=lambda opt: SomeScheduler(opt, ...) to bind it to fit's optimizer"
        )
    loss_fn = options.loss if options.loss is not None else default_loss(train_loader)
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)
    wrap = functools.partial(_wrap, device=device, info=info, compile=options.compile)
    show = options.progress and info.is_main
    return Run(
        model=model, net=wrap(model), wrap=wrap, device=device, precision=precision, channels_last=channels_last,
        info=info, loss_fn=loss_fn, metrics=options.metrics, ignore_index=dataset_attr(train_loader, "ignore_index"),
        show_bars=show and sys.stderr.isatty(), show_lines=show and not sys.stderr.isatty(), optimizer=optimizer,
        scheduler=scheduler, interval=resolve_interval(scheduler, options.scheduler_interval),
        scaler=torch.amp.GradScaler(device.type) if precision == "fp16" else None,
        accumulate_steps=options.accumulate_steps, clip_grad_norm=options.clip_grad_norm, checkpoint_dir=folder,
        epochs=options.epochs, early_stopping=options.early_stopping, freeze_encoder=options.freeze_encoder,
        encoder_lr=options.encoder_lr,
    )


def _wrap(model: nn.Module, device: torch.device, info: DistInfo, compile: bool) -> nn.Module:
    """What the training steps run: the model, in ``DistributedDataParallel`` when distributed, compiled when
    asked (built again when a freeze changes which parameters train)."""
    net: nn.Module = model
    if info.enabled:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return compile_module(net, inference=False, device=device) if compile else net


def _apply_freeze(run: Run) -> None:
    """Freeze or release the encoder for the coming epoch; say when it is released."""
    if run.freeze.set(run.freeze.frozen_in(run.epoch)) and run.net is not run.model:
        run.net = run.wrap(run.model)  # type: ignore[misc]  # DDP and compiled graphs fix what trains when built
    if run.epoch > 0 and run.epoch == run.freeze.epochs:
        log(run.info, run.show_bars or run.show_lines, f"encoder released: it trains from epoch {run.epoch + 1} on")


def _run_epoch(run: Run, train_loader: Any, val_loader: Any) -> Dict[str, Any]:
    """Train one epoch and validate; the epoch's record (losses, metrics, learning rate, time, images/s)."""
    started = time.perf_counter()
    if run.freeze is not None:
        _apply_freeze(run)
    groups = run.optimizer.param_groups  # type: ignore[union-attr]
    lr = float(groups[0]["lr"])
    set_data_epoch(train_loader, run.epoch, run.data_seed)
    train_stats = train_epoch(run, train_loader, run.epoch)
    train_seconds = time.perf_counter() - started
    _distributed.broadcast_buffers(run.model, run.info)
    record: Dict[str, Any] = {"epoch": run.epoch + 1, "lr": lr}
    record.update(("encoder_lr", float(g["lr"])) for g in groups if g.get("name") == ENCODER_GROUP)
    record.update({f"train_{k}": v for k, v in train_stats.items() if k != "images"})
    if val_loader is not None:
        record.update({f"val_{k}": v for k, v in evaluate_epoch(run, val_loader).items() if k != "images"})
    record["seconds"] = time.perf_counter() - started
    record["train_seconds"] = train_seconds
    record["images_per_second"] = train_stats["images"] / max(train_seconds, 1e-9)
    return record


def _judge_epoch(run: Run, record: Dict[str, Any]) -> Tuple[bool, bool]:
    """Record the epoch, track the best monitored value, step an epoch-wise scheduler; (improved, stop)."""
    history = run.history
    if history.monitor is None:
        history.monitor = pick_monitor(record)
        history.mode = mode_for(history.monitor)
    value = record.get(history.monitor)
    if not isinstance(value, (int, float)):
        raise ValueError(
            f"monitor={history.monitor!r} is not a number in the epoch record; available: "
            + ", ".join(k for k, v in record.items() if isinstance(v, (int, float)))
        )
    best = history.best_value
    improved = math.isfinite(value) and (best is None or (value > best if history.mode == "max" else value < best))
    if improved:
        history.best_value, history.best_epoch, run.bad_epochs = float(value), run.epoch + 1, 0
        if run.early_stopping is not None:
            run.best_state = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        run.bad_epochs += 1
    if run.scheduler is not None and run.interval == "epoch":
        if is_plateau(run.scheduler):
            if run.scheduler.mode != history.mode:
                raise ValueError(
                    f"ReduceLROnPlateau(mode={run.scheduler.mode!r}) is stepped with monitor {history.monitor!r}, "
                    f"which should be {history.mode}imised; create it with mode={history.mode!r}"
                )
            run.scheduler.step(value)
        else:
            run.scheduler.step()
    stop = run.early_stopping is not None and run.bad_epochs >= run.early_stopping
    history.stopped_early = stop
    history.append(record)
    run.epoch += 1
    return improved, stop


def _say_where_to_resume(run: Run) -> None:
    """On Ctrl-C: every file written so far is complete (writes are atomic); say which checkpoint continues."""
    last = run.checkpoint_dir / LAST if run.checkpoint_dir is not None else None
    if last is not None and last.is_file():
        hint = f"resume from {last} (after epoch {run.epoch}) with fit(..., checkpoint_dir=..., resume=True)"
    elif run.checkpoint_dir is not None:
        hint = "no epoch had finished, so there is no checkpoint yet"
    else:
        hint = "no checkpoint_dir was given, so there is nothing to resume from"
    log(run.info, True, f"interrupted during epoch {run.epoch + 1}; {hint}")


def _report(run: Run, record: Dict[str, Any], epoch_bar: Any, progress: bool) -> None:
    write_record(run.tensorboard, record)
    if epoch_bar is not None:
        shown = {k: record[k] for k in ("train_loss", "val_loss", run.history.monitor) if k in record}
        epoch_bar.set_postfix({k: f"{v:.4f}" for k, v in shown.items()}, refresh=False)
        epoch_bar.update(1)
    else:
        log(run.info, progress, format_record(record, run.epochs, run.history.monitor))
