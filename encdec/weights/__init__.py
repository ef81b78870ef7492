"""Reading, validating, converting and writing model weights.

* ``encdec.weights.formats``: recognise a checkpoint from its bytes and read it without trusting it;
* ``encdec.weights.load``: unwrap containers, rename reference keys, validate every key and shape, load;
* ``encdec.weights.save``: safetensors with metadata, written atomically.

Whole-model folders (``save_pretrained`` / ``from_pretrained``) and checkpoint conversion sit above the model
registry, in ``encdec.pretrained``.

Example:
    >>> import tempfile, torch
    >>> from encdec.weights import load_state_dict
    >>> load_state_dict(torch.nn.Linear(2, 1), {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)}).complete
    True
"""

from .errors import LoadReport, WeightsError
from .formats import read_checkpoint_file, read_metadata
from .load import CheckpointFilter, load_state_dict, load_weights, read_state_dict, remap_keys
from .save import CONFIG_KEYS, save_weights, weights_metadata

__all__ = [
    "CONFIG_KEYS",
    "CheckpointFilter",
    "LoadReport",
    "WeightsError",
    "load_state_dict",
    "load_weights",
    "read_checkpoint_file",
    "read_metadata",
    "read_state_dict",
    "remap_keys",
    "save_weights",
    "weights_metadata",
]
