"""Crash-safe checkpoint files and the random-number state a training run needs to resume exactly.

Every file is written atomically: the bytes go to a temporary file in the destination directory, which is
flushed and ``fsync``-ed, then renamed over the destination with :func:`os.replace`, and the directory itself
is ``fsync``-ed so the rename survives a power loss. A reader therefore sees either the previous complete file
or the new complete file, never a torn one, even if the writer is killed with ``SIGKILL`` half-way.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np
import torch

from . import weights

PathLike = Union[str, "os.PathLike[str]"]

CHECKPOINT_FORMAT = "encdec.checkpoint"
CHECKPOINT_VERSION = 1


def atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write a file atomically through an open binary handle (see :func:`encdec.weights.atomic_write`).

    Args:
        path: Destination file. Its directory is created if needed.
        write: Called with the open binary temporary file; writes the whole content.

    Returns:
        The destination path.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> atomic_write(d / "a.bin", lambda f: f.write(b"hello")).read_bytes()
        b'hello'
    """

    def write_file(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            write(handle)

    weights.atomic_write(path, write_file)
    return Path(path)


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save`` an object atomically (see :func:`atomic_write`).

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_save({"x": torch.ones(2)}, pathlib.Path(tempfile.mkdtemp()) / "c.pt")
        >>> torch.load(p, weights_only=True)["x"].tolist()
        [1.0, 1.0]
    """
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def atomic_write_json(obj: Any, path: PathLike) -> Path:
    """Write JSON atomically (see :func:`atomic_write`).

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_json({"a": 1}, pathlib.Path(tempfile.mkdtemp()) / "h.json").read_text()
        '{\\n  "a": 1\\n}'
    """
    text = json.dumps(obj, indent=2, allow_nan=True)
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def ensure_writable_dir(directory: PathLike) -> Path:
    """Create ``directory`` if needed and prove a file can be written there, before any training starts.

    Leftover temporary files of an earlier writer that was killed mid-write are removed.

    Raises:
        PermissionError: The directory cannot be created or written, naming it and the reason.

    Example:
        >>> import tempfile, pathlib
        >>> ensure_writable_dir(pathlib.Path(tempfile.mkdtemp()) / "run").is_dir()
        True
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", suffix=weights.TEMP_SUFFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise PermissionError(
            f"checkpoint_dir={str(directory)!r} is not a writable directory ({error.strerror or error}); "
            "pass a directory you can write to, or checkpoint_dir=None to train without checkpoints"
        ) from error
    for stale in directory.glob(".*" + weights.TEMP_SUFFIX):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                stale.unlink()
    return directory


def load_checkpoint(path: PathLike) -> Dict[str, Any]:
    """Load a checkpoint written by :func:`encdec.fit` with ``torch.load(weights_only=True)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not an encdec training checkpoint.

    Example:
        >>> import tempfile, pathlib
        >>> p = atomic_save({"format": CHECKPOINT_FORMAT, "version": 1}, pathlib.Path(tempfile.mkdtemp()) / "c.pt")
        >>> load_checkpoint(p)["version"]
        1
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume checkpoint {str(path)!r} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{str(path)!r} is not an encdec training checkpoint (expected a dict with format="
            f"{CHECKPOINT_FORMAT!r}); to start from plain weights use encdec.load_weights(model, path) "
            "and call fit without resume"
        )
    return state


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
    """Restore a snapshot taken by :func:`capture_rng_state` (the loaders must be passed in the same order).

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


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return repr(value)


def model_fingerprint(model: torch.nn.Module) -> Dict[str, Any]:
    """Class name, encdec config and state-dict shapes of a model."""
    config = getattr(model, "encdec_config", None)
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": json.dumps(config, sort_keys=True, default=repr) if config is not None else None,
        "shapes": {name: list(t.shape) for name, t in model.state_dict().items()},
    }


def optimizer_fingerprint(optimizer: torch.optim.Optimizer) -> Dict[str, Any]:
    """Class name, constructor defaults and parameter-group sizes of an optimizer."""
    return {
        "class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "defaults": {k: _plain(v) for k, v in sorted(optimizer.defaults.items())},
        "groups": [len(group["params"]) for group in optimizer.param_groups],
    }


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


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
        problems.append(f"model class: checkpoint {_short(saved_model['class'])}, this run {_short(now['class'])}")
    if saved_model.get("config") is not None and now["config"] is not None and saved_model["config"] != now["config"]:
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
                f"optimizer: checkpoint {_short(saved_optimizer['class'])}, this run {_short(opt_now['class'])}"
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
