"""One pass over a loader: a training epoch (forward, loss, backward, accumulated optimizer steps) and an
evaluation pass (forward under ``torch.inference_mode``), both returning the mean loss and the metrics."""

from __future__ import annotations

import contextlib
import copy
import time
from typing import Any, Dict, Iterable, Optional

import torch
from torch import nn

from .. import _distributed
from ..batches import (
    NonFiniteError,
    check_finite,
    check_images,
    check_labels,
    check_target_shape,
    check_targets,
    logits_of,
    split_batch,
)
from ..runtime import autocast, to_model_input
from ._defaults import default_metrics, scalarize
from ._progress import ProgressLines, bar
from ._run import Run

__all__ = ["NonFiniteLossError", "train_epoch", "evaluate_epoch"]


class NonFiniteLossError(NonFiniteError):
    """Training stopped because the loss became NaN or infinite.

    Attributes:
        epoch: 1-based epoch in which it happened.
        step: 1-based batch index within that epoch.
        checkpoint: The last checkpoint written before it (``None`` without ``checkpoint_dir`` or before the
            first epoch ended); ``fit(..., resume=True)`` continues from it.

    Example:
        >>> try:
        ...     raise NonFiniteLossError("loss is nan", epoch=2, step=5, checkpoint=None)
        ... except FloatingPointError as error:
        ...     (error.epoch, error.step)
        (2, 5)
    """

    def __init__(self, message: str, *, epoch: int, step: int, checkpoint: Optional[Any]) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.checkpoint = checkpoint


def _length(loader: Iterable[Any]) -> Optional[int]:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _prepare(run: Run, batch: Any, where: str) -> Any:
    """Images and targets of a batch, checked against the batch contract and moved to the run's device."""
    images, targets = split_batch(batch, where)
    images = check_images(images, where)
    targets = check_targets(targets, images, where)
    return to_model_input(images, run.device, run.channels_last), targets.to(run.device, non_blocking=True)


def _forward(run: Run, net: nn.Module, images: torch.Tensor, targets: torch.Tensor, where: str) -> Any:
    """The model's logits for a batch, its targets (checked against the logits' shape and number of outputs before
    any loss) and the classification head's output when ``fit`` trains one (else ``None``)."""
    with autocast(run.precision, run.device):
        output = net(images)
    logits = logits_of(output, where)
    if logits.dim() > 1:
        targets = check_target_shape(targets, logits, where)
        classes = 2 if logits.shape[1] == 1 else int(logits.shape[1])
        check_labels(targets, classes, _ignore_index(run), where)
    trained_head = run.aux is not None and isinstance(output, tuple) and len(output) == 2
    return logits, targets, output[1] if trained_head else None


def _ignore_index(run: Run) -> Optional[int]:
    return run.ignore_index if run.ignore_index is not None else getattr(run.loss_fn, "ignore_index", None)


def _require_batches(seen: int, what: str) -> None:
    if not seen:
        raise ValueError(f"the {what} loader yielded no batches: its dataset is empty, or smaller than one batch "
                         "with drop_last=True")


def _fresh_metrics(run: Run) -> Any:
    if run.metrics is None:
        return None
    tracker = copy.deepcopy(run.metrics)
    tracker.reset()
    return tracker


def _optimizer_step(run: Run) -> None:
    """Unscale, clip, step, update the scaler, zero the gradients, and step a per-step scheduler."""
    optimizer, scaler = run.optimizer, run.scaler
    if scaler is not None and run.clip_grad_norm is not None:
        scaler.unscale_(optimizer)
    if run.clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(run.model.parameters(), run.clip_grad_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()  # type: ignore[union-attr]
    optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
    run.global_step += 1
    if run.scheduler is not None and run.interval == "step":
        run.scheduler.step()


def _stop_on_nonfinite(run: Run, loss: torch.Tensor, epoch: int, index: int, n_batches: Optional[int]) -> None:
    finite = torch.isfinite(loss.detach()).to(torch.int32).reshape(1)
    if run.info.enabled:  # every rank must stop together, or the others hang in the next all-reduce
        finite = _distributed.all_reduce_sum(finite, run.info) // run.info.world_size
    if bool(finite.item()):
        return
    run.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
    last = run.checkpoint_dir / "last.pt" if run.checkpoint_dir is not None else None
    last = last if last is not None and last.is_file() else None
    where = (f"resume from {last} (written after epoch {epoch}) with fit(..., resume=True)" if last is not None
             else "no checkpoint was written yet (pass checkpoint_dir= to get one)")
    raise NonFiniteLossError(
        f"loss is {loss.item()} at epoch {epoch + 1}, step {index + 1}"
        f"{f' of {n_batches}' if n_batches else ''} (optimizer step {run.global_step + 1}); training stopped. "
        f"{where}; lower the learning rate, set clip_grad_norm, or use precision='fp32'",
        epoch=epoch + 1, step=index + 1, checkpoint=last,
    )


def train_epoch(run: Run, loader: Iterable[Any], epoch: int) -> Dict[str, Any]:
    """One pass over ``loader`` with gradient accumulation; the mean loss and metrics over all ranks.

    ``epoch`` is 0-based. Every ``run.accumulate_steps`` batches the optimizer steps, each loss divided by its
    group's size; a trailing partial group is stepped too.
    """
    run.net.train()
    if run.freeze is not None:
        run.freeze.hold_statistics()  # a frozen encoder's BatchNorm statistics stay as they are
    n_batches = _length(loader)
    tracker = _fresh_metrics(run)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    seen, steps = 0, run.accumulate_steps
    progress = bar(n_batches, f"epoch {epoch + 1}", run.show_bars, leave=False)
    lines = ProgressLines(f"epoch {epoch + 1}/{run.epochs}", n_batches) if run.show_lines else None
    started = time.perf_counter()
    run.optimizer.zero_grad(set_to_none=True)  # type: ignore[union-attr]
    index = -1
    returning_labels = run.aux.labels_returned() if run.aux is not None else contextlib.nullcontext()
    with returning_labels:  # a trained classification head's output comes with the masks
        for index, batch in enumerate(loader):
            where = f"training batch {index + 1} of epoch {epoch + 1}"
            images, targets = _prepare(run, batch, where)
            group_start = index - index % steps
            group_size = steps if n_batches is None else min(steps, n_batches - group_start)
            stepping = index - group_start + 1 == group_size
            no_sync = run.info.enabled and not stepping
            with run.net.no_sync() if no_sync else contextlib.nullcontext():  # type: ignore[operator]
                logits, targets, labels = _forward(run, run.net, images, targets, where)
                loss = run.loss_fn(logits.float(), targets)  # type: ignore[misc]
                if labels is not None:
                    loss = loss + run.aux.loss(labels, targets, _ignore_index(run))
                _stop_on_nonfinite(run, loss, epoch, index, n_batches)
                scaled = loss / group_size
                (run.scaler.scale(scaled) if run.scaler is not None else scaled).backward()
            if stepping:
                _optimizer_step(run)
            loss_sum += loss.detach().double() * images.shape[0]
            seen += images.shape[0]
            with torch.no_grad():
                if tracker is None:
                    tracker = default_metrics(logits, run.ignore_index)
                tracker.update(logits.detach().float(), targets)
            if progress is not None:
                elapsed = max(time.perf_counter() - started, 1e-9)
                progress.set_postfix({"loss": f"{loss.item():.4f}", "img/s": f"{seen / elapsed:.1f}"}, refresh=False)
                progress.update(1)
            if lines is not None:
                lines.update(index + 1, seen, loss.detach())
    pending = (index + 1) % steps if n_batches is None else 0
    if pending:
        # A loader without a length ended inside a group: its losses were divided by accumulate_steps and, under
        # DDP, ran without gradient sync. Average the gradients over ranks, rescale to the group's real size, step.
        for parameter in run.model.parameters():
            if parameter.grad is not None:
                _distributed.all_reduce_sum(parameter.grad, run.info).div_(run.info.world_size)
                parameter.grad.mul_(steps / pending)
        _optimizer_step(run)
    if progress is not None:
        progress.close()
    return reduce_stats(run, loss_sum, seen, tracker, "training")


def evaluate_epoch(run: Run, loader: Iterable[Any], desc: str = "validation") -> Dict[str, Any]:
    """Loss (when ``run.loss_fn`` is set) and metrics of ``run.model`` over ``loader``, in eval mode under
    ``torch.inference_mode``; the model's train/eval mode is restored afterwards."""
    model = run.model
    was_training = model.training
    model.eval()
    tracker = _fresh_metrics(run)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    seen = 0
    progress = bar(_length(loader), desc, run.show_bars, leave=False)
    try:
        with torch.inference_mode():
            for index, batch in enumerate(loader):
                where = f"{desc} batch {index + 1}"
                images, targets = _prepare(run, batch, where)
                logits, targets, _ = _forward(run, model, images, targets, where)
                logits = logits.float()
                check_finite(logits, where)
                if run.loss_fn is not None:
                    loss_sum += run.loss_fn(logits, targets).double() * images.shape[0]
                seen += images.shape[0]
                if tracker is None:
                    tracker = default_metrics(logits, run.ignore_index)
                tracker.update(logits, targets)
                if progress is not None:
                    progress.update(1)
    finally:
        if progress is not None:
            progress.close()
        model.train(was_training)
    stats = reduce_stats(run, loss_sum, seen, tracker, desc)
    if run.loss_fn is None:
        stats.pop("loss")
    return stats


def reduce_stats(run: Run, loss_sum: torch.Tensor, seen: int, tracker: Any, what: str) -> Dict[str, Any]:
    """Mean loss, image count and metrics over all ranks; an error (on every rank) when no rank saw a batch."""
    totals = torch.stack([loss_sum.detach().double().cpu(), torch.tensor(float(seen), dtype=torch.float64)])
    totals = _distributed.all_reduce_sum(totals, run.info)
    count = int(totals[1].item())
    _require_batches(count, what)
    stats: Dict[str, Any] = {"loss": float(totals[0].item() / count) if count else float("nan"), "images": count}
    if tracker is not None:
        if run.info.enabled:
            tracker.sync()
        stats.update({k: scalarize(v) for k, v in tracker.compute().items()})
    return stats
