"""``encdec train``: train or fine-tune a model with ``encdec.fit`` on a dataset spec."""

from __future__ import annotations

import argparse
import inspect
import os
from pathlib import Path
from typing import Any, List, Optional

import torch
from torch.utils.data import DataLoader

from ..datasets import DATA_KINDS, DataSpec, take
from ..inference import predict
from ..pretrained import save_pretrained
from ..training import FitOptions, fit, recipes, seed_everything, state
from ..training.factories import LOSSES, OPTIMIZERS, SCHEDULERS, make_loss, make_optimizer, make_scheduler
from ..training.recipes import Recipe
from ..training.transfer import encoder_of
from ..viz import save_classification_grid, save_prediction_grid
from ._common import (
    FORMAT,
    QUICK_CHECK_SAMPLES,
    CLIError,
    UsageError,
    add_encoder_argument,
    add_max_pixels_arg,
    at_least,
    build_model,
    check_size,
    checked_data,
    device,
    list_skipped,
    lookup_model,
    max_pixels,
    open_data,
    parse_data,
    parse_model_args,
    positive,
    say_classes,
    stderr,
)

__all__: list = []  # a verb module: parsing and printing, nothing to import


def add_model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--model``, ``--num-classes`` and ``--arg`` (shared with eval and predict)."""
    p.add_argument("--model", required=required, metavar="NAME", help="a model name from `encdec list`")
    p.add_argument("--num-classes", type=positive(), metavar="N", help="number of outputs (default: the data's)")
    add_encoder_argument(p)
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="other builder argument, JSON value (repeatable), e.g. --arg widths=[16,32,64,128,256]")


def add_runtime_args(p: argparse.ArgumentParser, precision: Optional[str] = "auto") -> None:
    """``--device``, ``--precision`` and ``--workers`` (shared with eval, whose precision defaults to fp32; train's
    comes from the recipe)."""
    p.add_argument("--device", type=device, default="auto", help="auto (CUDA, MPS, else CPU), cpu, cuda, cuda:1, mps")
    default = precision or "the recipe's: fp32 for the course recipes, else auto"
    p.add_argument("--precision", default=precision, choices=["auto", "fp32", "bf16", "fp16"],
                   help=f"(default {default}) auto picks bf16 on GPUs and on CPUs with native bfloat16, else fp32")
    p.add_argument("--workers", type=at_least(0), metavar="N", help="DataLoader worker processes")


def check_precision(args: argparse.Namespace, precision: Optional[str] = None) -> None:
    """fp16 needs CUDA: refuse it before any data is read."""
    on_cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    if (precision or args.precision) == "fp16" and not on_cuda:
        raise UsageError(f"--precision fp16 needs a CUDA device (--device {args.device}); use bf16 or fp32 on the CPU")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or fine-tune a model", formatter_class=FORMAT, description=(
        "Train a model with encdec's fit(): validation every epoch, checkpoints (last.pt, best.pt,\n"
        "best.safetensors), history.json, curves.png, a prediction grid, and a save_pretrained folder\n"
        "(config.json + model.safetensors) in --out.\n\n"
        "data kinds (--data KIND:PATH):\n"
        + "".join(f"  {k + (':PATH' if k != 'shapes' else '[:N]'):<13}{d.layout}\n" for k, d in DATA_KINDS.items())
        + "\nexamples:\n"
        "  encdec train --model unet --arg widths=[16,32,64,128,256] --data shapes --epochs 5\n"
        "  encdec train --model unet --data voc:data/VOC2012 --weights UNet_best_model.pth --epochs 1\n"
        "  encdec train --model resnet34_unet --data pet:data/oxford-iiit-pet --loss dice_ce --size 256\n"
        "  encdec train --model vgg16_cifar --data cifar10:data --weights vgg16_epoch250.ckpt --lr 1e-4\n"
        "  encdec train --model resnet18_classifier --data dogs:data/Images "
        "--encoder-weights resnet18-f37072fd.pth\n"
        "  encdec train --model unet --encoder resnet34 --data folder:data/leaves --size 256   # your own images\n"
        "  encdec train --model unet --data shapes --out runs/shapes --resume   # continue an interrupted run\n"
        "  encdec train --model unet --encoder resnet34 --encoder-weights resnet34-b627a593.pth --data shapes \\\n"
        "      --freeze-encoder 2 --encoder-lr 1e-4   # transfer: decoder first, then the encoder, slower\n"
        "  encdec train --recipe pet_unet_course --data pet:data/oxford-iiit-pet   # a course report's workflow\n"
        "  encdec train --recipe voc_unet_course --data voc:data/VOC2012 --epochs 1   # flags override the recipe\n"
        "\n`encdec recipes` lists the recipes and what each holds."))
    add_model_args(p, required=False)
    p.add_argument("--recipe", metavar="NAME", help="a recipe from `encdec recipes`: model, preprocessing, optimizer, "
                   "schedule, batch, epochs, loss and monitor of a course report (flags given here override it)")
    p.add_argument("--data", default="shapes", metavar="KIND:PATH", help="dataset (default: shapes, no files)")
    p.add_argument("--weights", metavar="FILE", help="start from this checkpoint (any supported format)")
    p.add_argument("--partial", action="store_true",
                   help="load only the --weights entries that fit (e.g. a checkpoint with another head)")
    p.add_argument("--encoder-weights", metavar="FILE", help="torchvision ImageNet file for the encoder")
    p.add_argument("--epochs", type=positive(), help=f"epochs to train (default {DEFAULTS.epochs})")
    p.add_argument("--batch-size", type=positive(), help=f"images per step (default {DEFAULTS.batch_size})")
    p.add_argument("--lr", type=positive(float), help=f"learning rate (default {DEFAULTS.lr})")
    p.add_argument("--weight-decay", type=float, help=f"(default {DEFAULTS.weight_decay})")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), help="(default adamw; sgd: momentum 0.9)")
    p.add_argument("--scheduler", choices=list(SCHEDULERS), help="learning-rate schedule (default cosine)")
    p.add_argument("--scheduler-interval", choices=["epoch", "step"],
                   help="step the schedule after every epoch (default) or every batch")
    p.add_argument("--step-size", type=positive(), help="step: epochs (or batches) between decays")
    p.add_argument("--gamma", type=positive(float), help="step / multistep / plateau: decay factor")
    p.add_argument("--milestones", metavar="E1,E2,...", help="multistep: the epochs at which to decay")
    p.add_argument("--patience", type=at_least(0), help="plateau: epochs without improvement before a decay")
    p.add_argument("--loss", choices=list(LOSSES), help="segmentation loss (default ce; see the training guide)")
    p.add_argument("--monitor", metavar="KEY", help="history key that picks the best epoch, e.g. val_dice, val_loss")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="random crops and flips beyond the reference preprocessing (default on; recipes say)")
    p.add_argument("--size", type=positive(), help="image side (default: 256 for VOC/Pet, 32 for CIFAR-10, ...)")
    p.add_argument("--limit", type=positive(), metavar="N", help="use only the first N images of each split")
    p.add_argument("--check-data", action="store_true",
                   help=f"read every sample before training and list the unusable ones (by default "
                        f"{QUICK_CHECK_SAMPLES} of each split are read)")
    p.add_argument("--skip-corrupt", action="store_true",
                   help="read every sample first, leave out unreadable images and masks with wrong labels, and "
                        "list them at the end")
    p.add_argument("--freeze-encoder", nargs="?", const=True, type=at_least(0), metavar="EPOCHS",
                   help="transfer learning: keep the encoder (weights and BatchNorm statistics) frozen for the whole "
                        "run, or for the first EPOCHS epochs; saved with the run, so --resume continues the plan")
    p.add_argument("--encoder-lr", type=positive(float), metavar="LR",
                   help="the encoder's own learning rate (the decoder and head train at --lr); the schedule "
                        "scales both")
    add_max_pixels_arg(p)
    p.add_argument("--early-stopping", type=positive(), metavar="EPOCHS", help="patience in epochs")
    p.add_argument("--out", metavar="DIR", help="output folder (default runs/MODEL-KIND)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT (from OUT/last.pt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUT (its checkpoints, history and pictures; other files are kept)")
    p.add_argument("--seed", type=at_least(0), default=0,
                   help="seed of weights, data order and augmentation (default 0)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log every epoch's numbers to OUT/tensorboard (needs: pip install 'encdec[tensorboard]')")
    p.add_argument("--no-plots", action="store_true", help="skip curves.png and predictions.png")
    add_runtime_args(p, precision=None)
    p.set_defaults(func=run)


#: What `encdec train` does without a recipe.
DEFAULTS = Recipe(name="command line", report="", model="", data="", num_classes=None, size=0, augment=True,
                  optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=8, epochs=10, scheduler="cosine",
                  monitor="")


def _settings(args: argparse.Namespace, spec: DataSpec) -> Recipe:
    """The recipe asked for (or the defaults) with every flag given on the command line laid over it."""
    if args.recipe is not None:
        try:
            base = recipes.get(args.recipe)
        except ValueError as error:
            raise UsageError(f"--recipe: {error}") from None
        if spec.kind != base.data:
            raise UsageError(f"recipe {base.name} trains on {base.data} data; pass --data {base.data}:PATH")
    else:
        if args.model is None:
            raise UsageError("pass --model NAME (see `encdec list`) or --recipe NAME (see `encdec recipes`)")
        base = DEFAULTS.with_overrides(model=args.model, data=spec.kind)
    scheduler_args = dict(base.scheduler_args)
    scheduler_args.update({k: v for k, v in (("step_size", args.step_size), ("gamma", args.gamma),
                                             ("patience", args.patience)) if v is not None})
    if args.milestones:
        try:
            scheduler_args["milestones"] = [int(m) for m in args.milestones.split(",")]
        except ValueError:
            raise UsageError(f"--milestones {args.milestones!r}: expected epochs like 10,20") from None
    return base.with_overrides(
        model=args.model, num_classes=args.num_classes, size=args.size, augment=args.augment,
        optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size,
        epochs=args.epochs, scheduler=args.scheduler, scheduler_interval=args.scheduler_interval, loss=args.loss,
        monitor=args.monitor, scheduler_args=scheduler_args, precision=args.precision,
    )


def _num_classes(spec: DataSpec, info: Any, kwargs: dict, requested: Optional[int]) -> Optional[int]:
    """The number of outputs: asked for, else the 22-output reference convention on VOC (for a model built the way
    its 22-output reference checkpoint needs: ``unet`` without an encoder, ``resnet50_unet``), else the dataset's."""
    if requested is not None:
        return requested
    if spec.kind == "voc":
        return 22 if any(r.num_classes == 22 and r.fits(kwargs) for r in info.reference_checkpoints) else 21
    return None


def _datasets(spec: DataSpec, task: str, size: int, num_classes: Optional[int], normalize: bool, limit: Any,
              augment: bool, skip_corrupt: bool, pixels: Optional[int]):
    val = open_data(spec, "val", size=size, task=task, num_classes=num_classes, normalize=normalize,
                    skip_corrupt=skip_corrupt, max_pixels=pixels)
    train = open_data(spec, "train", size=size, task=task, num_classes=num_classes, normalize=normalize,
                      augment=augment, skip_corrupt=skip_corrupt, max_pixels=pixels)
    say_classes(val)
    return take(train, limit), take(val, limit)


#: The files a run writes into --out: fit's checkpoints and history, and the folder and pictures of train;
#: --overwrite removes exactly these (and the tensorboard folder).
RUN_FILES = state.RUN_FILES + ("config.json", "model.safetensors", "curves.png", "predictions.png")


def _claim_out(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to write into a folder holding an earlier run unless told to continue or replace it (the check
    ``fit`` makes on its ``checkpoint_dir``, with this command's files and spelling)."""
    try:
        state.claim_run_folder(out, resume=resume, overwrite=overwrite, files=RUN_FILES,
                               spelling=("--out", "--resume", "--overwrite"))
    except ValueError as error:
        raise UsageError(str(error)) from None
    except FileExistsError as error:
        raise CLIError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    spec = parse_data(args.data)
    settings = _settings(args, spec)
    args.model = settings.model
    _claim_out(Path(args.out or f"runs/{settings.model}-{spec.kind}"), args.resume, args.overwrite)
    info = lookup_model(settings.model)
    check_precision(args, settings.precision)
    _say_where_the_report_started(settings, args)
    kwargs = parse_model_args(settings.model, args.arg, args.encoder)
    size = settings.size or spec.info.default_size(info.task, info.input_size)
    if "input_size" in inspect.signature(info.builder).parameters:
        kwargs.setdefault("input_size", size)
    num_classes = _num_classes(spec, info, kwargs, settings.num_classes)
    train_set, val_set = _datasets(spec, info.task, size, num_classes, args.encoder_weights is not None, args.limit,
                                   settings.augment, args.skip_corrupt, max_pixels(args))
    train_set, skipped = checked_data(train_set, "training", full=args.check_data, skip=args.skip_corrupt)
    val_set, skipped_val = checked_data(val_set, "validation", full=args.check_data, skip=args.skip_corrupt)
    kwargs["num_classes"] = val_set.num_classes if num_classes is None else num_classes
    if kwargs["num_classes"] != val_set.num_classes:
        raise UsageError(f"--num-classes {kwargs['num_classes']} does not match the {val_set.num_classes} classes "
                         f"of --data {spec.kind} ({', '.join(val_set.class_names)})")
    if args.encoder_weights is not None:
        if "encoder_weights" not in inspect.signature(info.builder).parameters:
            raise UsageError(f"{args.model} takes no --encoder-weights (only whole-model --weights)")
        kwargs["encoder_weights"] = Path(args.encoder_weights)
    for option in ("weights", "encoder_weights"):
        path = getattr(args, option)
        if path is not None and not Path(path).is_file():
            raise CLIError(f"--{option.replace('_', '-')} {path}: no such file")
    seed_everything(args.seed)  # before building, so the initial weights repeat too
    model = build_model(args.model, kwargs, Path(args.weights) if args.weights else None, partial=args.partial)
    check_size(model, size, args.model)
    if args.freeze_encoder or args.encoder_lr is not None:
        try:
            encoder_of(model)  # a model without an encoder is a usage error, named before any training
        except ValueError as error:
            raise UsageError(str(error)) from None
    if len(train_set) == 0 or len(val_set) == 0:
        raise CLIError(f"--data {args.data}: the training or validation split is empty")
    workers = args.workers
    if workers is None:
        workers = 0 if spec.kind == "shapes" else min(4, os.cpu_count() or 1)
    batch_size = min(settings.batch_size, len(train_set))
    train_loader = training_loader(train_set, batch_size, workers)
    val_loader = DataLoader(val_set, batch_size=batch_size, num_workers=workers)

    out = Path(args.out or f"runs/{args.model}-{spec.kind}")
    params = [p for p in model.parameters() if p.requires_grad]
    monitor = settings.monitor or None
    schedule_args = dict(settings.scheduler_args)
    if settings.scheduler == "plateau":
        schedule_args.setdefault("mode", "min" if "loss" in (monitor or "val_loss") else "max")

    def optimizer(groups: List[dict]) -> torch.optim.Optimizer:  # fit passes the groups (two with --encoder-lr)
        return make_optimizer(settings.optimizer, groups, lr=settings.lr, weight_decay=settings.weight_decay)

    def scheduler(bound: torch.optim.Optimizer) -> Any:
        try:
            return make_scheduler(settings.scheduler, bound, epochs=settings.epochs,
                                  steps_per_epoch=len(train_loader), **schedule_args)
        except (TypeError, ValueError) as error:
            raise UsageError(f"--scheduler {settings.scheduler}: {error}") from None

    scheduler(optimizer([{"params": [torch.nn.Parameter(torch.zeros(1))]}]))  # a bad schedule stops before any work
    if settings.loss != "ce" and info.task != "segmentation":
        raise UsageError(f"--loss {settings.loss} is for segmentation models; {settings.model} is a classifier")
    ignore = settings.ignore_index if settings.ignore_index is not None else val_set.ignore_index
    loss = make_loss(settings.loss, ignore_index=ignore)
    if loss is None and settings.ignore_index is not None:
        loss = torch.nn.CrossEntropyLoss(ignore_index=settings.ignore_index)
    for defect in settings.defects:
        stderr(f"note: recipe {settings.name} reproduces a defect of {settings.report}: {defect}")
    stderr(f"training {settings.model} ({sum(p.numel() for p in params):,} trainable parameters) on {spec.kind}: "
           f"{len(train_set)} training / {len(val_set)} validation images at {size}x{size}, {settings.epochs} "
           f"epochs, batch {batch_size}, precision {settings.precision}{_transfer_note(args)} -> {out}/")
    record = {"class_names": val_set.class_names, "mean": list(val_set.mean), "std": list(val_set.std),
              "preprocessing": preprocessing_record(spec, info.task, size, val_set)}
    # recorded on the model, so best.safetensors carries them too: an interrupted run is evaluated like a finished one
    model.encdec_config.update({k: v for k, v in record.items() if v is not None})
    options = FitOptions(epochs=settings.epochs, optimizer=optimizer, scheduler=scheduler,
                         scheduler_interval=settings.scheduler_interval, loss=loss, device=args.device,
                         precision=settings.precision, checkpoint_dir=out, resume=args.resume, monitor=monitor,
                         early_stopping=args.early_stopping, seed=args.seed, progress=not args.quiet,
                         tensorboard=args.tensorboard, freeze_encoder=args.freeze_encoder, encoder_lr=args.encoder_lr)
    options.check(val_loader)
    history = fit(model, train_loader, val_loader, **options.kwargs())
    save_pretrained(model, out, **record)
    written = ["config.json", "model.safetensors", "best.safetensors", "best.pt", "last.pt", "history.json",
               "metrics.csv"]
    if not args.no_plots:
        written += _write_pictures(model, history, val_set, out, info.task, args.device)
    last = history.epochs[-1] if history.epochs else {}
    shown = {k: v for k, v in last.items() if k.startswith("val_") and isinstance(v, float)}
    print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    if history.best_epoch is not None:
        print(f"best {history.monitor} {history.best_value:.4f} at epoch {history.best_epoch} (best.safetensors)")
    print(f"wrote {out}/: {', '.join(written)}")
    list_skipped(skipped + skipped_val)
    print(f"use it: encdec eval --weights {out} --data {args.data}   |   encdec.from_pretrained(\"{out}\")")
    return 0


def _transfer_note(args: argparse.Namespace) -> str:
    """How the encoder trains, for the line that starts training (empty when it trains like the rest)."""
    frozen = args.freeze_encoder
    epochs = f"{frozen} epoch{'s' if frozen != 1 else ''}"
    note = "" if not frozen else ", encoder frozen" if frozen is True else f", encoder frozen for {epochs}"
    return note + (f", encoder lr {args.encoder_lr:g}" if args.encoder_lr is not None else "")


def training_loader(dataset: Any, batch_size: int, workers: int) -> DataLoader:
    """The shuffled training loader of ``encdec train``: every sample each epoch (``fit`` joins a last batch of
    one to the batch before it, since BatchNorm cannot train on a single sample).

    Example:
        >>> len(training_loader(list(range(27)), 8, 0))
        4
    """
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=False,
                      persistent_workers=workers > 0)


def _say_where_the_report_started(settings: Recipe, args: argparse.Namespace) -> None:
    """A recipe whose report fine-tuned a course checkpoint, or started from an ImageNet file, says so when the
    command line does not pass it."""
    if settings.weights is not None and args.weights is None:
        stderr(f"note: {settings.report} fine-tuned the course checkpoint {settings.weights} (recipe "
               f"{settings.name}); without --weights {settings.weights} this run starts from random weights and "
               "its numbers are not comparable to the report's")
    if settings.encoder_weights is not None and args.encoder_weights is None:
        stderr(f"note: {settings.report} started the encoder from {settings.encoder_weights} (recipe {settings.name}); "
               f"pass --encoder-weights {settings.encoder_weights} to do the same")


def preprocessing_record(spec: DataSpec, task: str, size: int, dataset: Any) -> dict:
    """How training prepared the images, saved in ``config.json`` so eval and predict prepare theirs the same way.

    Example:
        >>> from encdec.datasets import parse_spec, SyntheticShapes
        >>> preprocessing_record(parse_spec("shapes:8"), "segmentation", 32, SyntheticShapes(n=1, size=32))["size"]
        [32, 32]
    """
    return {"task": task, "size": [size, size], "resize": DATA_KINDS[spec.kind].resize, "data": spec.kind,
            "mean": list(dataset.mean), "std": list(dataset.std), "class_names": list(dataset.class_names),
            "palette": getattr(dataset, "palette", None), "ignore_index": getattr(dataset, "ignore_index", None),
            **({"split": dict(dataset.data_split)} if getattr(dataset, "data_split", None) else {})}


def _write_pictures(model: Any, history: Any, dataset: Any, out: Path, task: str, device_name: str) -> List[str]:
    """curves.png and predictions.png (a grid of validation images); returns the names written."""
    written = []
    try:
        history.plot(out / "curves.png")
        written.append("curves.png")
    except ImportError as error:
        stderr(f"note: curves.png skipped ({error})")
    rows = 6 if task == "segmentation" else 8
    images, targets = next(iter(DataLoader(dataset, batch_size=min(rows, len(dataset)))))
    preds = predict(model, images, device=device_name, precision="fp32")
    try:
        if task == "segmentation":
            save_prediction_grid(out / "predictions.png", images, targets, preds, palette=dataset.palette,
                                 ignore_index=dataset.ignore_index, mean=dataset.mean, std=dataset.std,
                                 class_names=dataset.class_names)
        else:
            save_classification_grid(out / "predictions.png", images, preds.tolist(), targets.tolist(),
                                     dataset.class_names, mean=dataset.mean, std=dataset.std)
        written.append("predictions.png")
    except ImportError as error:
        stderr(f"note: predictions.png skipped ({error})")
    return written
