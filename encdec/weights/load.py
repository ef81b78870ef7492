"""Loading weights: unwrap a checkpoint's containers, rename reference keys, validate everything, then load.

Every checkpoint goes through the same steps:

1. ``read_state_dict``: read the file safely (``encdec.weights.formats``), unwrap training containers
   (``state_dict``, ``model``, ``net``, ...) and strip ``module.`` / ``_orig_mod.`` / Lightning ``model.``
   prefixes.
2. The model's ``checkpoint_filter`` (given by its builder) renames reference keys to encdec's own.
3. ``load_state_dict``: check every key and shape first, then load all or nothing.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from .._files import read_regular_file
from .errors import LoadReport, WeightsError, listing, shorten
from .formats import PathLike, read_checkpoint_file, read_checkpoint_with_metadata
from .tensor_layout import check_layouts

__all__ = ["CheckpointFilter", "read_state_dict", "remap_keys", "load_state_dict", "load_weights"]

StateDict = Dict[str, Tensor]
Rule = Tuple[str, Union[str, Callable[[Any], str]]]
#: A pure function mapping a foreign state dict to a model's own key names: ``filter(state, model) -> state``.
CheckpointFilter = Callable[[StateDict, Optional[nn.Module]], StateDict]

_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "net", "module", "network", "weights")
_EMA_KEYS = ("state_dict_ema", "model_ema", "ema")
_STRIPPED_PREFIXES = ("module.", "_orig_mod.")
_MAX_NESTING = 4


def read_state_dict(path: PathLike, *, use_ema: bool = False) -> StateDict:
    """Read a checkpoint file into a flat ``{name: tensor}`` dict, safely, whatever its container.

    Args:
        path: A ``.safetensors``, ``.pth``, ``.pt``, ``.ckpt`` or ``.bin`` file; the format is detected from the
            bytes, not the extension.
        use_ema: Prefer an EMA copy of the weights (``state_dict_ema``) when the file has one.

    Raises:
        WeightsError: The file is missing, unreadable, not a checkpoint, asks to run pickled code, or holds
            something other than tensors.

    Example:
        >>> import tempfile
        >>> path = tempfile.mkdtemp() + "/m.ckpt"
        >>> torch.save({"state_dict": {"module.fc.weight": torch.zeros(2, 2)}, "epoch": 3}, path)
        >>> list(read_state_dict(path))
        ['fc.weight']
    """
    return _state_of(read_checkpoint_file(path), str(path), use_ema)


def _state_of(raw: Any, source: str, use_ema: bool) -> StateDict:
    state = _unwrap(raw, source, use_ema)
    _check_tensors(state, source)
    check_layouts(state, source)  # before anything reads a value: an expanded view would be materialised
    return _strip_prefixes(state)


def _unwrap(obj: Any, source: str, use_ema: bool) -> StateDict:
    keys = (_EMA_KEYS + _CONTAINER_KEYS) if use_ema else (_CONTAINER_KEYS + _EMA_KEYS)
    for _ in range(_MAX_NESTING + 1):
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{source}: holds a {type(obj).__name__}, not a dict of tensors")
        if obj and all(isinstance(v, Tensor) for v in obj.values()):
            bad = [k for k in obj if not isinstance(k, str)]
            if bad:
                raise WeightsError(f"{source}: state dict has non-string keys, e.g. {shorten(repr(bad[0]))}")
            return dict(obj)
        inner = next((k for k in keys if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            tensors = [k for k, v in obj.items() if isinstance(v, Tensor)]
            others = [f"{shorten(repr(k))} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, Tensor)]
            if not obj:
                raise WeightsError(f"{source}: holds an empty dict, no weights")
            if tensors:
                raise WeightsError(f"{source}: state dict has non-tensor values: {listing(others)}")
            raise WeightsError(
                f"{source}: found no state dict; top-level keys are {listing([shorten(repr(k)) for k in obj])}. "
                f"encdec looks under {', '.join(keys)}"
            )
        obj = obj[inner]
    raise WeightsError(f"{source}: containers nested deeper than {_MAX_NESTING} levels")


def _check_tensors(state: Mapping[str, Any], source: str) -> None:
    """Refuse values that are not dense tensors holding data: sparse, nested, meta-device or non-tensor values."""
    for key, value in state.items():
        where = f"{source}: entry {shorten(repr(key))}"
        if not isinstance(value, Tensor):
            raise WeightsError(f"{where} is a {type(value).__name__}, not a tensor")
        if value.is_nested:
            raise WeightsError(f"{where} is a nested tensor; checkpoints hold dense (strided) tensors")
        if value.layout != torch.strided:
            raise WeightsError(f"{where} has layout {value.layout}; checkpoints hold dense (strided) tensors")
        if value.device.type == "meta":
            raise WeightsError(f"{where} is on the meta device and holds no values")


def _strip_prefixes(state: StateDict) -> StateDict:
    def strip(key: str) -> str:
        # Advance an index instead of slicing repeatedly: a hostile key of a million "module." prefixes would
        # otherwise cost quadratic time.
        start, changed = 0, True
        while changed:
            changed = False
            for prefix in _STRIPPED_PREFIXES:
                if key.startswith(prefix, start):
                    start, changed = start + len(prefix), True
        return key[start:]

    state = {strip(k): v for k, v in state.items()}
    if state and all(k.startswith("model.") for k in state):  # Lightning modules hold the net as self.model
        state = {k[len("model."):]: v for k, v in state.items()}
    return state



# ----------------------------------------------------------------------------------------------- key maps


def remap_keys(state: Mapping[str, Tensor], rules: Sequence[Rule], drop: Iterable[str] = ()) -> StateDict:
    """Rename keys by the first matching regular-expression rule, dropping keys that match ``drop``.

    A rule is ``(pattern, replacement)``; the replacement is a template string or a function of the match.
    Keys no rule matches are kept as they are, so already-native state dicts pass through unchanged.

    Example:
        >>> sd = {"convUp_fin.weight": torch.zeros(1), "unused.bias": torch.zeros(1)}
        >>> list(remap_keys(sd, [(r"^convUp_fin\\.", "head.")], drop=[r"^unused\\."]))
        ['head.weight']
    """
    compiled = [(re.compile(p), r) for p, r in rules]
    dropped = [re.compile(p) for p in drop]
    out: StateDict = {}
    for key, value in state.items():
        if any(d.search(key) for d in dropped):
            continue
        for pattern, repl in compiled:
            new, n = pattern.subn(repl, key, count=1)
            if n:
                key = new
                break
        out[key] = value
    return out


# ----------------------------------------------------------------------------------------------- loading


def load_weights(
    model: nn.Module,
    path: PathLike,
    *,
    strict: bool = True,
    use_ema: bool = False,
    checkpoint_filter: Optional[CheckpointFilter] = None,
) -> LoadReport:
    """Load a checkpoint of any supported format into ``model``, converting reference layouts.

    Args:
        model: A model from an encdec builder (its registered key map converts reference checkpoints) or any
            ``nn.Module`` whose own state-dict names the file uses.
        path: The checkpoint file.
        strict: With ``True`` (default), any missing, unexpected or mis-shaped key raises ``WeightsError`` and
            nothing is loaded. With ``False``, what fits is loaded and the rest is reported (and warned about).
        use_ema: Prefer the file's EMA weights when it has them.
        checkpoint_filter: Renames foreign keys to the model's (see ``CheckpointFilter``); default: the
            model's own ``checkpoint_filter`` attribute, which encdec's builders set.

    A model of a builder with several layouts (``resnet50_unet``'s ``variant``) built without naming one is
    rebuilt in place in the layout the checkpoint's shapes show, before anything is loaded; the report's
    ``variant`` says which layout was loaded. Load before creating an optimizer over the model's parameters.

    Returns:
        A ``LoadReport``.

    Raises:
        WeightsError: Unreadable, unsafe or non-fitting checkpoints, or a file that records another architecture
            than the model's; the message lists the keys at fault with both shapes and a hint such as
            ``num_classes=10``.

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/cnn.ckpt"
        >>> torch.save(encdec.custom_cnn(num_classes=3).state_dict(), path)
        >>> encdec.load_weights(encdec.custom_cnn(num_classes=3), path).complete
        True
    """
    raw, metadata = read_checkpoint_with_metadata(path)  # one open of the file for both
    _check_recorded_architecture(model, path, metadata)
    original = _state_of(raw, str(path), use_ema)
    keymap = checkpoint_filter if checkpoint_filter is not None else getattr(model, "checkpoint_filter", None)
    state = keymap(original, model) if keymap is not None else original
    # A filter renames or drops keys but keeps the tensors: a tensor of the file that is not among the results
    # was dropped on purpose (the reference defines it but never uses it).
    kept = {id(value) for value in state.values()}
    dropped = sorted(key for key, value in original.items() if id(value) not in kept)
    # The config.json of the file's folder (an encdec run, an smp save_pretrained) says what the file was built as.
    check = getattr(model, "check_saved_config", None)
    if callable(check):
        config = _config_beside(path)
        if config is not None:
            check(model, config, str(path))
    # A builder with several layouts, called without naming one, lets the checkpoint's shapes pick it.
    adapt = getattr(model, "adapt_to_checkpoint", None)
    chosen = adapt(model, state) if callable(adapt) else None
    try:
        report = load_state_dict(model, state, strict=strict, source=str(path))
    except WeightsError as error:
        other = adapt.layout_of(model, state) if callable(adapt) and hasattr(adapt, "layout_of") else None
        if other is None:
            raise
        raise WeightsError(f"{error}\n  Hint: the checkpoint holds the {other!r} layout: build the model with "
                           f"variant={other!r}, or name no variant and let the checkpoint choose") from None
    report.dropped = dropped
    report.variant = (getattr(model, "encdec_config", None) or {}).get("kwargs", {}).get("variant")
    report.variant_from_checkpoint = chosen is not None
    return report


_CONFIG_LIMIT = 1 << 20  # a config.json is kilobytes; a larger one beside a weights file is not one


def _config_beside(path: PathLike) -> Optional[Dict[str, Any]]:
    """The parsed ``config.json`` in the folder of a weights file (an encdec run, an smp ``save_pretrained``), or
    ``None`` when there is none or it is not a small JSON object."""
    config = Path(path).parent / "config.json"
    if not config.exists():
        return None
    try:  # opened once, without blocking; a FIFO, a device or a huge file is not a config
        value = json.loads(read_regular_file(config, "config", limit=_CONFIG_LIMIT).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _check_recorded_architecture(model: nn.Module, path: PathLike, metadata: Mapping[str, str]) -> None:
    """Refuse a file whose encdec metadata names another architecture than the model's (tensors of one
    architecture can fit another's names and shapes, and would load silently)."""
    own = (getattr(model, "encdec_config", None) or {}).get("architecture")
    if own is None:
        return
    recorded = metadata.get("architecture")
    if recorded is not None and recorded != own:
        raise WeightsError(f"{path}: records architecture {shorten(repr(recorded))}, but the model is {own!r}; build "
                           f"the model the file records (encdec.from_pretrained(path) does) or pass another file")


def load_state_dict(
    model: nn.Module, state: Mapping[str, Tensor], *, strict: bool = True, source: str = "state dict"
) -> LoadReport:
    """Check a state dict against ``model`` completely, then load it: all of it, or (``strict=False``) what fits.

    Names and shapes are checked first (no value of a mis-shaped tensor is ever read); then it refuses
    non-floating values for floating parameters, non-finite values, and values
    no trained model holds (``PLAUSIBILITY_CHECKS``: negative BatchNorm variances, negative or fractional
    batch counters, and the model's own ``plausibility_checks``).
    BatchNorm ``num_batches_tracked`` counters absent from old checkpoints are not required.

    Example:
        >>> layer = nn.Linear(2, 3)
        >>> load_state_dict(layer, {"weight": torch.zeros(3, 2), "bias": torch.zeros(3)}).loaded
        ['weight', 'bias']
    """
    own = model.state_dict()
    if not isinstance(state, Mapping):
        raise WeightsError(f"{source}: is a {type(state).__name__}, not a mapping of names to tensors")
    state = dict(state)
    bad_keys = [k for k in state if not isinstance(k, str)]
    if bad_keys:
        raise WeightsError(f"{source}: state dict has non-string keys, e.g. {shorten(repr(bad_keys[0]))}")
    _check_tensors(state, source)
    for key in own:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = own[key].clone()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in own
                  if k in state and state[k].shape != own[k].shape]
    if strict and (missing or unexpected or mismatched):  # shapes first: no value of a mis-shaped tensor is read
        raise WeightsError(_mismatch_message(model, source, missing, unexpected, mismatched))
    fitting = {k: state[k] for k in own if k in state and state[k].shape == own[k].shape}
    bad_dtype = [f"{k} ({v.dtype} for {own[k].dtype})" for k, v in fitting.items()
                 if own[k].is_floating_point() and not v.is_floating_point()]
    nonfinite = [k for k, v in fitting.items() if v.is_floating_point() and v.numel()
                 and not _all_finite(v, own[k].dtype)]
    implausible = _implausible(model, fitting, own)
    if bad_dtype or nonfinite or implausible:
        parts = implausible
        if bad_dtype:
            parts.append(f"non-floating values for floating parameters: {listing(bad_dtype)}")
        if nonfinite:
            parts.append(f"NaN or infinite values in: {listing(nonfinite)}")
        raise WeightsError(f"{source}: " + "; ".join(parts))
    skip = {k for k, _, _ in mismatched}
    loadable = {k: v for k, v in state.items() if k in own and k not in skip}
    model.load_state_dict(loadable, strict=strict)
    report = LoadReport(loaded=list(loadable), missing=missing, unexpected=unexpected, mismatched=mismatched)
    if not report.complete:
        warnings.warn(
            f"{source}: loaded {len(loadable)} of {len(own)} entries; "
            + _mismatch_message(model, source, missing, unexpected, mismatched, header=False),
            stacklevel=2,
        )
    return report


#: Values no trained model can hold, by key suffix: (suffix, test of the tensor, what a valid value is).
PLAUSIBILITY_CHECKS = (
    ("running_var", lambda t: not t.is_floating_point() or bool((t.float() >= 0).all()),
     "a BatchNorm running variance, which is never negative"),
    ("num_batches_tracked", lambda t: not t.is_complex() and bool(((t.double() >= 0) & (t.double() % 1 == 0)).all()),
     "a BatchNorm batch counter, a non-negative whole number"),
)


def _implausible(model: nn.Module, state: Mapping[str, Tensor], own: Mapping[str, Tensor]) -> List[str]:
    """One message per check that some entries fail: the built-in checks and any the model declares in a
    ``plausibility_checks`` attribute of the same form."""
    checks = PLAUSIBILITY_CHECKS + tuple(getattr(model, "plausibility_checks", ()))
    parts = []
    for suffix, valid, meaning in checks:
        bad = [k for k in own if k in state and k.endswith(suffix) and state[k].numel() and not valid(state[k])]
        if bad:
            parts.append(f"impossible values for {meaning}: {listing(bad)}")
    return parts


def _all_finite(value: Tensor, target: torch.dtype) -> bool:
    """Whether ``value`` stays finite once copied into a ``target`` tensor (float64 1e300 becomes inf in float32)."""
    if target.is_floating_point and value.dtype != target:
        value = value.to(target)
    if value.dtype not in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        value = value.float()  # isfinite has no kernel for the float8 types
    return bool(torch.isfinite(value).all())


def _mismatch_message(model, source, missing, unexpected, mismatched, header: bool = True) -> str:
    name = (getattr(model, "encdec_config", None) or {}).get("architecture", type(model).__name__)
    lines = [f"{source} does not fit {name}:"] if header else []
    if mismatched:
        shapes = [f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in mismatched]
        lines.append(f"  {len(mismatched)} mis-shaped: {listing(shapes)}")
    if missing:
        lines.append(f"  {len(missing)} missing from the checkpoint: {listing(missing)}")
    if unexpected:
        lines.append(f"  {len(unexpected)} unexpected in the checkpoint: {listing(unexpected)}")
    hint = _hint(model, mismatched, missing, unexpected)
    if hint:
        lines.append(f"  Hint: {hint}")
    return "\n".join(lines)


def _hint(model, mismatched, missing, unexpected) -> str:
    hints = []
    num_classes = getattr(model, "num_classes", None)
    in_channels = getattr(model, "in_channels", None)
    for _key, ckpt, own in mismatched:
        if len(ckpt) != len(own):
            continue
        diff = [i for i in range(len(own)) if ckpt[i] != own[i]]
        if len(diff) != 1:
            continue
        i = diff[0]
        if i == 0 and own[0] == num_classes and f"num_classes={ckpt[0]}" not in " ".join(hints):
            hints.append(f"the checkpoint has {ckpt[0]} outputs: pass num_classes={ckpt[0]}?")
        elif i == 1 and own[1] == in_channels and len(own) == 4 and f"in_channels={ckpt[1]}" not in " ".join(hints):
            hints.append(f"the checkpoint takes {ckpt[1]} input channels: pass in_channels={ckpt[1]}?")
    if not hints and missing and unexpected and len(unexpected) >= len(missing) // 2:
        hints.append("most names differ: is this a checkpoint of another architecture? "
                     "encdec.list_models() shows the builders; `encdec info NAME` lists what each loads")
    return " ".join(hints)


