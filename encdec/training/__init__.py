"""``fit``, ``evaluate`` and ``History``: a small training helper that resumes exactly, runs fast on CPU and
scales out with torch.distributed.

* ``fit`` (``encdec.training.fitting``): the training recipe, top to bottom;
* ``evaluate`` (``encdec.training.evaluation``): loss and metrics on a loader;
* ``tune`` (``encdec.training.tuning``): time both memory layouts once, for ``channels_last=``;
* ``History`` (``encdec.training.history``): the per-epoch record;
* ``FitOptions`` (``encdec.training.options``): the settings of a run in one typed object;
* ``encdec.training.transfer``: the encoder of a model, its freeze and its learning rate;
* ``encdec.training.state``: checkpoints and resume; ``encdec.training.factories``: optimizers,
  schedules and losses by name.

How to run (device, precision, channels-last) is decided by ``encdec.runtime``, whose functions are also
available here.

Example:
    >>> import torch, encdec
    >>> from torch.utils.data import DataLoader
    >>> from encdec.datasets import SyntheticShapes
    >>> model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
    >>> history = encdec.fit(model, DataLoader(SyntheticShapes(n=8, size=32), batch_size=8), epochs=1,
    ...                      progress=False, seed=0)
    >>> history.monitor
    'train_miou'
"""

from ..runtime import autocast, cpu_supports_bf16, resolve_channels_last, resolve_device, resolve_precision
from ._steps import NonFiniteLossError
from .evaluation import evaluate
from .fitting import fit
from .history import History
from .options import FitOptions
from .seeding import seed_everything, seed_worker
from .tuning import tune

__all__ = [
    "fit",
    "evaluate",
    "tune",
    "History",
    "FitOptions",
    "NonFiniteLossError",
    "seed_everything",
    "seed_worker",
    "resolve_device",
    "resolve_precision",
    "cpu_supports_bf16",
    "resolve_channels_last",
    "autocast",
]
