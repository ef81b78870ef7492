"""Training checkpoints: what ``last.pt`` / ``best.pt`` hold, writing them, and restoring a run from one exactly
(model, optimizer, scheduler, scaler, counters, history and every random-number state)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import _distributed
from .._json import jsonable
from ..atomic import atomic_save
from ..weights import read_checkpoint_file, save_weights
from ._run import Run
from ._tensorboard import FOLDER as TENSORBOARD
from .history import History

__all__ = [
    "BEST", "BEST_WEIGHTS", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "HISTORY_JSON", "LAST", "METRICS_CSV",
    "RUN_FILES", "RUN_FOLDERS", "capture_rng_state", "check_counters", "claim_run_folder", "compare_fingerprints",
    "load_checkpoint", "model_fingerprint", "optimizer_fingerprint", "recorded_settings", "restore_rng_state",
    "resume_run", "resumed_setting", "save_run",
]

CHECKPOINT_FORMAT = "encdec.checkpoint"
CHECKPOINT_VERSION = 1
LAST = "last.pt"
BEST = "best.pt"
BEST_WEIGHTS = "best.safetensors"
HISTORY_JSON = "history.json"
METRICS_CSV = "metrics.csv"
#: The files and folders ``fit`` writes into ``checkpoint_dir``: a folder holding any of them holds a run.
RUN_FILES = (LAST, BEST, BEST_WEIGHTS, HISTORY_JSON, METRICS_CSV)
RUN_FOLDERS = (TENSORBOARD,)

PathLike = Union[str, "os.PathLike[str]"]


def claim_run_folder(
    folder: PathLike,
    *,
    resume: Any,
    overwrite: bool,
    files: Sequence[str] = RUN_FILES,
    folders: Sequence[str] = RUN_FOLDERS,
    spelling: Tuple[str, str, str] = ("checkpoint_dir", "resume=True", "overwrite=True"),
    remove: bool = True,
) -> List[str]:
    """Refuse to start a run in a folder holding an earlier one unless it is continued (``resume``) or replaced
    (``overwrite``, which removes exactly the earlier run's ``files`` and ``folders``; other files stay).

    ``fit`` and ``encdec train`` share this check; ``spelling`` names the folder, resume and overwrite options as
    the caller's user types them (``("--out", "--resume", "--overwrite")`` on the command line). ``remove=False``
    checks without removing (the ranks of a distributed run other than the first).

    Returns:
        The names removed (empty when there was nothing to replace, or when continuing).

    Raises:
        FileExistsError: The folder holds an earlier run and neither ``resume`` nor ``overwrite`` is set; the
            message names the folder, the files found and the ways out.
        ValueError: Both ``resume`` and ``overwrite`` are set.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "history.json").write_text("{}")
        >>> try:
        ...     claim_run_folder(folder, resume=None, overwrite=False)
        ... except FileExistsError as error:
        ...     print(str(error).split("; ")[1])
        pass resume=True to continue it, overwrite=True to replace it, or another checkpoint_dir
        >>> claim_run_folder(folder, resume=None, overwrite=True)
        ['history.json']
    """
    where, resume_option, overwrite_option = spelling
    if resume and overwrite:
        raise ValueError(f"{resume_option} continues the run in {where} and {overwrite_option} replaces it: "
                         "pass one of them")
    folder = Path(folder)
    earlier = sorted(name for name in (*files, *folders) if (folder / name).exists()) if folder.is_dir() else []
    if not earlier or resume:
        return []
    if not overwrite:
        raise FileExistsError(f"{where} {folder} holds an earlier run ({', '.join(earlier)}); pass {resume_option} "
                              f"to continue it, {overwrite_option} to replace it, or another {where}")
    if remove:
        for name in earlier:
            if (folder / name).is_dir():
                shutil.rmtree(folder / name)
            else:
                (folder / name).unlink()
    return earlier


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint written by ``encdec.fit`` with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        encdec.WeightsError: The file is not a regular file, is damaged (a CRC-32 mismatch names the member), or
            asks to run code.
        ValueError: The file is not an encdec training checkpoint.

    Example:
        >>> import tempfile, pathlib
        >>> from encdec.atomic import atomic_save
        >>> p = atomic_save({"format": CHECKPOINT_FORMAT, "version": 1}, pathlib.Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["version"]
        1
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"resume checkpoint {str(path)!r} does not exist")
    state = read_checkpoint_file(path)  # a regular file, every zip member's CRC-32 checked, no code run
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an encdec training checkpoint (expected a dict with format="
            f"{CHECKPOINT_FORMAT!r}); to start from plain weights use encdec.load_weights(model, path) "
            "and call fit without resume"
        )
    return state


def recorded_settings(path: Optional[Path]) -> Dict[str, Any]:
    """The run settings a checkpoint recorded (precision, layout, encoder freeze, ...); ``{}`` without one.

    Example:
        >>> recorded_settings(None)
        {}
    """
    if path is None:
        return {}
    settings = load_checkpoint(path).get("settings")
    return settings if isinstance(settings, dict) else {}


def resumed_setting(name: str, given: Any, recorded: Dict[str, Any], default: Any, source: Optional[Path]) -> Any:
    """A run setting that must stay the same across a resume: the value given (or ``default`` in a new run); in a
    resumed run the recorded value (``default`` when the checkpoint predates the setting) unless one is given,
    and a given value that differs from it is refused (``True`` and ``1`` count as different).

    Raises:
        ValueError: Naming the checkpoint, both values and the ways out.

    Example:
        >>> from pathlib import Path
        >>> resumed_setting("freeze_encoder", None, {"freeze_encoder": 2}, False, Path("last.pt"))
        2
        >>> try:
        ...     resumed_setting("freeze_encoder", True, {"freeze_encoder": 2}, False, Path("last.pt"))
        ... except ValueError as error:
        ...     print(str(error)[:73])
        cannot resume from last.pt with freeze_encoder=True: that run was started
    """
    if source is None:
        return default if given is None else given
    saved = recorded.get(name, default)
    if given is None or (type(given), given) == (type(saved), saved):
        return saved
    raise ValueError(f"cannot resume from {source} with {name}={given!r}: that run was started with {name}="
                     f"{saved!r}, and changing it would not continue it exactly; leave {name} out (or pass "
                     f"{saved!r}) to continue it, or start a new run")


# --------------------------------------------------------------------------------------------------------------
# Random-number state. Stored with plain types and tensors only, so torch.load(weights_only=True) can read it.


def _generators(loaders: Iterable[Any]) -> List[torch.Generator]:
    """The distinct torch.Generator objects a set of DataLoaders draw from (their own and their samplers')."""
    found: List[torch.Generator] = []
    for loader in loaders:
        if loader is None:
            continue
        candidates = [
            getattr(loader, "generator", None),
            getattr(getattr(loader, "sampler", None), "generator", None),
            getattr(getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None),
        ]
        for gen in candidates:
            if isinstance(gen, torch.Generator) and gen.device.type == "cpu" and all(gen is not g for g in found):
                found.append(gen)
    return found


def capture_rng_state(loaders: Iterable[Any] = ()) -> Dict[str, Any]:
    """Snapshot Python, NumPy, torch (CPU and CUDA) and DataLoader generator states.

    Example:
        >>> state = capture_rng_state()
        >>> a = torch.rand(1); restore_rng_state(state); bool(torch.rand(1) == a)
        True
    """
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state: Dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": {
            "bit_generator": np_state["bit_generator"],
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "loader_generators": [gen.get_state() for gen in _generators(loaders)],
    }
    return state


def restore_rng_state(state: Dict[str, Any], loaders: Iterable[Any] = ()) -> None:
    """Restore a snapshot taken by ``capture_rng_state`` (the loaders must be passed in the same order).

    Example:
        >>> state = capture_rng_state()
        >>> a = random.random(); restore_rng_state(state); random.random() == a
        True
    """
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": np_state["bit_generator"],
            "state": {"key": np_state["key"].numpy().astype(np.uint32), "pos": int(np_state["pos"])},
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        }
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
    generators = _generators(loaders)
    saved = state.get("loader_generators", [])
    for gen, gen_state in zip(generators, saved):
        gen.set_state(gen_state)


# --------------------------------------------------------------------------------------------------------------
# Fingerprints: what must match for a resume to be exact, compared with messages that name the difference.


def model_fingerprint(model: torch.nn.Module) -> Dict[str, Any]:
    """Class name, encdec config and state-dict shapes of a model."""
    config = getattr(model, "encdec_config", None)
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": json.dumps(config, sort_keys=True, default=repr) if config is not None else None,
        "shapes": {name: list(t.shape) for name, t in model.state_dict().items()},
    }


def _what_builds(config_text: str) -> Any:
    """The architecture and builder arguments of a fingerprint's config: what a resumed model must share (the
    class names, normalisation and preprocessing recorded beside them may be added as a run goes)."""
    try:
        config = json.loads(config_text)
    except ValueError:
        return config_text
    return {k: config.get(k) for k in ("architecture", "kwargs")} if isinstance(config, dict) else config


def optimizer_fingerprint(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """Class name, constructor defaults and parameter-group sizes of an optimizer."""
    return {
        "class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "defaults": {k: jsonable(v) for k, v in sorted(optimizer.defaults.items())},
        "groups": [len(group["params"]) for group in optimizer.param_groups],
    }


def _class_name(qualified: str) -> str:
    return qualified.rsplit(".", 1)[-1]


def compare_fingerprints(
    saved_model: Dict[str, Any],
    model: torch.nn.Module,
    saved_optimizer: Optional[Dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    source: str,
) -> None:
    """Raise ``ValueError`` naming the first differences between a checkpoint's model/optimizer and these.

    Example:
        >>> m = torch.nn.Linear(2, 3); opt = torch.optim.SGD(m.parameters(), lr=0.1)
        >>> compare_fingerprints(model_fingerprint(m), m, optimizer_fingerprint(opt), opt, "c.pt")
    """
    now = model_fingerprint(model)
    problems: List[str] = []
    if saved_model["class"] != now["class"]:
        problems.append(
            f"model class: checkpoint {_class_name(saved_model['class'])}, this run {_class_name(now['class'])}"
        )
    if saved_model.get("config") is not None and now["config"] is not None and \
            _what_builds(saved_model["config"]) != _what_builds(now["config"]):
        problems.append(f"model config: checkpoint {saved_model['config']}, this run {now['config']}")
    old, new = saved_model["shapes"], now["shapes"]
    missing = [k for k in old if k not in new]
    unexpected = [k for k in new if k not in old]
    mis_shaped = [f"{k} {tuple(old[k])} vs {tuple(new[k])}" for k in old if k in new and old[k] != new[k]]
    if missing:
        more = " ..." if len(missing) > 5 else ""
        problems.append(f"tensors only in the checkpoint: {', '.join(missing[:5])}{more}")
    if unexpected:
        problems.append(
            f"tensors only in this model: {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else "")
        )
    if mis_shaped:
        problems.append(
            "shapes (checkpoint vs this model): " + "; ".join(mis_shaped[:5]) + (" ..." if len(mis_shaped) > 5 else "")
        )
    if saved_optimizer is not None:
        opt_now = optimizer_fingerprint(optimizer)
        if saved_optimizer["class"] != opt_now["class"]:
            problems.append(
                f"optimizer: checkpoint {_class_name(saved_optimizer['class'])}, "
                f"this run {_class_name(opt_now['class'])}"
            )
        else:
            for key in sorted(set(saved_optimizer["defaults"]) | set(opt_now["defaults"])):
                a, b = saved_optimizer["defaults"].get(key), opt_now["defaults"].get(key)
                if a != b:
                    problems.append(f"optimizer setting {key}: checkpoint {a!r}, this run {b!r}")
            if saved_optimizer["groups"] != opt_now["groups"]:
                problems.append(
                    f"optimizer parameter groups (tensors per group): checkpoint {saved_optimizer['groups']}, "
                    f"this run {opt_now['groups']}"
                )
    if problems:
        raise ValueError(
            f"cannot resume from {source}: it was written for a different model or optimizer -- "
            + "; ".join(problems)
            + ". Build the same model and optimizer as the interrupted run, or start a new run without resume."
        )


# --------------------------------------------------------------------------------------------------------------
# A run's checkpoint: written after every epoch, read back by resume_run.


def save_run(run: Run, loaders: List[Any], improved: bool) -> None:
    """Write ``last.pt`` (and ``best.pt`` + ``best.safetensors`` when the monitored value improved) and
    ``history.json`` into the run's checkpoint folder; rank 0 writes, every rank contributes its RNG state.

    Example:
        >>> import tempfile, pathlib, encdec
        >>> from torch.utils.data import DataLoader
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> loader = DataLoader(encdec.SyntheticShapes(n=4, size=32), batch_size=4)
        >>> _ = encdec.fit(encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64)), loader, epochs=1,
        ...                checkpoint_dir=folder, progress=False)  # fit calls save_run after every epoch
        >>> load_checkpoint(folder / LAST)["epoch"]
        1
    """
    rng_states = _distributed.gather_objects(capture_rng_state(loaders), run.info)
    folder = run.checkpoint_dir
    if folder is not None and run.info.is_main:
        payload = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "epoch": run.epoch,
            "global_step": run.global_step,
            "bad_epochs": run.bad_epochs,
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),  # type: ignore[union-attr]
            "scheduler": run.scheduler.state_dict() if run.scheduler is not None else None,
            "scaler": run.scaler.state_dict() if run.scaler is not None else None,
            "rng": rng_states,
            "history": run.history.to_dict(),
            "fingerprint": {
                "model": model_fingerprint(run.model),
                "optimizer": optimizer_fingerprint(run.optimizer),  # type: ignore[arg-type]
            },
            "settings": {"precision": run.precision, "accumulate_steps": run.accumulate_steps,
                         "epochs": run.epochs, "data_seed": run.data_seed, "channels_last": run.channels_last,
                         "freeze_encoder": run.freeze_encoder, "encoder_lr": run.encoder_lr},
        }
        atomic_save(payload, folder / LAST)
        if improved:
            atomic_save(payload, folder / BEST)
            history = run.history
            save_weights(run.model, folder / BEST_WEIGHTS, epoch=history.best_epoch, monitor=history.monitor,
                         value=history.best_value)
        run.history.save_json(folder / HISTORY_JSON)
        run.history.save_csv(folder / METRICS_CSV)
    _distributed.barrier(run.info)


def check_counters(state: Dict[str, Any], source: str) -> None:
    """Refuse a checkpoint whose counters no run can have written: ``epoch``, ``global_step`` and ``bad_epochs``
    must be non-negative whole numbers, ``bad_epochs`` at most ``epoch``, the history one record per epoch and
    the data seed a whole number (a negative epoch would otherwise train more epochs than asked for).

    Raises:
        ValueError: Naming the file, the counter and its value.

    Example:
        >>> check_counters({"epoch": 1, "global_step": 4, "bad_epochs": 0, "history": {"epochs": [{}]}}, "c.pt")
        >>> try:
        ...     check_counters({"epoch": -5, "global_step": 0, "bad_epochs": 0, "history": {"epochs": []}}, "c.pt")
        ... except ValueError as error:
        ...     print(str(error)[:60])
        cannot resume from c.pt: its epoch is -5, not a non-negative
    """
    def refuse(what: str) -> ValueError:
        return ValueError(f"cannot resume from {source}: {what}; the file is damaged or was edited. Start a new run "
                          "without resume, or resume from another checkpoint")

    for key in ("epoch", "global_step", "bad_epochs"):
        value = state.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refuse(f"its {key} is {value!r}, not a non-negative whole number")
    if state["bad_epochs"] > state["epoch"]:
        raise refuse(f"its bad_epochs ({state['bad_epochs']}) exceeds its epoch ({state['epoch']})")
    history = state.get("history")
    records = history.get("epochs") if isinstance(history, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise refuse("its history holds no list of epoch records")
    if len(records) != state["epoch"]:
        raise refuse(f"its history holds {len(records)} epoch records for epoch {state['epoch']}")
    seed = (state.get("settings") or {}).get("data_seed") if isinstance(state.get("settings"), dict) else None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise refuse(f"its data_seed is {seed!r}, not a whole number")


def resume_run(run: Run, path: Path, loaders: List[Any], monitor: Optional[str]) -> None:
    """Restore ``run`` from a checkpoint written by ``save_run``, refusing one of another model or optimizer.

    Raises:
        ValueError: The checkpoint was written for a different model, optimizer or monitored key, or holds
            counters no run writes (:func:`check_counters`).

    Example:
        >>> import tempfile, pathlib, encdec
        >>> from torch.utils.data import DataLoader
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> loader = DataLoader(encdec.SyntheticShapes(n=4, size=32), batch_size=4)
        >>> model = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
        >>> _ = encdec.fit(model, loader, epochs=1, checkpoint_dir=folder, progress=False)
        >>> len(encdec.fit(model, loader, epochs=2, checkpoint_dir=folder, resume=True, progress=False))
        2
    """
    state = load_checkpoint(path)
    check_counters(state, str(path))
    compare_fingerprints(state["fingerprint"]["model"], run.model, state["fingerprint"]["optimizer"],
                         run.optimizer, str(path))  # type: ignore[arg-type]
    saved_monitor = state["history"].get("monitor")
    if monitor is not None and saved_monitor is not None and monitor != saved_monitor:
        raise ValueError(
            f"cannot resume from {path}: it monitored {saved_monitor!r}, this run monitor={monitor!r}; "
            f"pass monitor={saved_monitor!r} or start a new run"
        )
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])  # type: ignore[union-attr]
    if run.scheduler is not None and state.get("scheduler") is not None:
        run.scheduler.load_state_dict(state["scheduler"])
    if run.scaler is not None and state.get("scaler") is not None:
        run.scaler.load_state_dict(state["scaler"])
    run.history = History.from_dict(state["history"])
    run.epoch, run.global_step, run.bad_epochs = state["epoch"], state["global_step"], state["bad_epochs"]
    run.data_seed = int(state.get("settings", {}).get("data_seed", run.data_seed))
    rng_states = state["rng"]
    restore_rng_state(rng_states[run.info.rank % len(rng_states)], loaders)
    if run.early_stopping is not None and run.history.best_epoch is not None:
        best_path = path.parent / BEST
        if best_path.is_file():
            run.best_state = load_checkpoint(best_path)["model"]
    if run.early_stopping is not None and run.history.stopped_early:
        run.epoch = run.epochs  # the interrupted run had already stopped early: honour that decision
