"""Writing weights: safetensors with metadata (or ``torch.save`` for ``.pth``/``.pt``), always atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch import nn

from .._version import __version__
from ..atomic import atomic_write
from .formats import DIGEST_KEY, PathLike, tensor_crc32

__all__ = ["CONFIG_KEYS", "config_value", "weights_metadata", "save_weights"]

#: What a model's ``encdec_config`` may carry besides its architecture, saved with its weights: the class names, the
#: normalisation, and ``preprocessing`` (how training prepared the images: ``size`` ``[H, W]``, ``resize``
#: ``"stretch"`` or ``"none"``, ``task``, ``ignore_index``, ``palette``), which ``predict`` and the command line use.
CONFIG_KEYS = ("class_names", "mean", "std", "preprocessing", "activation")


def config_value(value: Any) -> Any:
    """A config entry as JSON-able data: mappings as dicts, strings as they are, other collections as lists.

    Example:
        >>> config_value((0.5, 0.5)), config_value({"size": [64, 64]}), config_value("sigmoid")
        ([0.5, 0.5], {'size': [64, 64]}, 'sigmoid')
    """
    if isinstance(value, str):
        return value
    return dict(value) if isinstance(value, Mapping) else list(value)

_TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


def weights_metadata(model: nn.Module, extra: Mapping[str, Any]) -> Dict[str, str]:
    """The string metadata saved with ``model``'s weights: format, encdec version, architecture and builder
    arguments (for models from encdec builders), the model's ``CONFIG_KEYS`` and ``extra`` as JSON.

    Example:
        >>> import encdec
        >>> meta = weights_metadata(encdec.custom_cnn(num_classes=2), {"class_names": ["cat", "dog"]})
        >>> meta["architecture"], meta["class_names"]
        ('custom_cnn', '["cat", "dog"]')
    """
    config = getattr(model, "encdec_config", None) or {}
    meta = {"format": "pt", "encdec_version": __version__}
    if config:
        meta["architecture"] = config["architecture"]
        meta["kwargs"] = json.dumps(config["kwargs"], sort_keys=True)
    for key in CONFIG_KEYS:
        value = extra.get(key, config.get(key))
        if value is not None:
            meta[key] = json.dumps(config_value(value))
    for key, value in extra.items():
        if key not in CONFIG_KEYS and value is not None:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    return meta


def save_weights(
    model: nn.Module, path: PathLike, *, verify: Optional[Callable[[Path], None]] = None, **metadata: Any
) -> Path:
    """Save ``model``'s weights atomically, as safetensors with metadata (or ``torch.save`` for ``.pth/.pt/.ckpt``).

    The metadata records the architecture and builder arguments (for models from encdec builders), the encdec
    version, and whatever you pass: ``class_names``, ``mean``, ``std`` or other JSON-able values. Safetensors files
    also record each tensor's CRC-32, checked when the file is read, so bytes damaged on disk are refused.

    Args:
        model: The model.
        path: ``.safetensors`` (default format) or ``.pth`` / ``.pt`` / ``.ckpt`` / ``.bin`` for ``torch.save``.
        verify: Called with the written temporary file before it replaces ``path``; an exception it raises
            leaves ``path`` as it was.
        **metadata: JSON-able values to store.

    Returns:
        The path written.

    Example:
        >>> import tempfile, encdec
        >>> path = tempfile.mkdtemp() + "/cnn.safetensors"
        >>> _ = encdec.save_weights(encdec.custom_cnn(), path, class_names=["a", "b", "c", "d"])
        >>> encdec.from_pretrained(path).encdec_config["class_names"]
        ['a', 'b', 'c', 'd']
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = weights_metadata(model, metadata)
    if Path(path).suffix in _TORCH_SUFFIXES:  # every zip member carries a CRC-32 checked on load
        def write(tmp: str) -> None:
            torch.save({"state_dict": state, "encdec": meta}, tmp)
    else:
        from safetensors.torch import save_file

        meta[DIGEST_KEY] = json.dumps({k: tensor_crc32(v) for k, v in state.items()}, separators=(",", ":"))

        def write(tmp: str) -> None:
            save_file(state, tmp, metadata=meta)

    def write_and_verify(tmp: str) -> None:
        write(tmp)
        if verify is not None:
            verify(Path(tmp))

    return atomic_write(path, write_and_verify)
