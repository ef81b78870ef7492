"""Small pieces shared by the training tests and the subprocess scripts they launch."""

from __future__ import annotations

import random
from typing import Any, Dict, List

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import encdec
from encdec.datasets import SyntheticShapes

WIDTHS = (8, 16, 32, 64, 128)


def tiny_unet(num_classes: int = 3, seed: int = 0) -> nn.Module:
    """The tiny U-Net of the tests, with its initial weights fixed by ``seed``."""
    torch.manual_seed(seed)
    return encdec.unet(num_classes=num_classes, widths=WIDTHS)


class RandomFlips(Dataset):
    """SyntheticShapes with random flips drawn from Python's, NumPy's and torch's global RNGs.

    Every global random state then changes what the model sees, so a resume that forgets one of them shows up
    as different final weights.
    """

    def __init__(self, n: int = 8, size: int = 16, seed: int = 0) -> None:
        self.base = SyntheticShapes(n=n, size=size, num_classes=3, seed=seed)
        self.num_classes = self.base.num_classes
        self.ignore_index = self.base.ignore_index

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        image, mask = self.base[index]
        if random.random() < 0.5:
            image, mask = image.flip(-1), mask.flip(-1)
        if np.random.rand() < 0.5:
            image, mask = image.flip(-2), mask.flip(-2)
        image = image + 0.01 * torch.randn_like(image)
        return image, mask


def loaders(n: int = 8, size: int = 16, batch_size: int = 4, **kwargs: Any):
    """Shuffled augmented training loader (n // batch_size steps) and a one-batch validation loader."""
    train = DataLoader(RandomFlips(n, size, seed=0), batch_size=batch_size, shuffle=True, **kwargs)
    val = DataLoader(SyntheticShapes(n=4, size=size, num_classes=3, seed=1), batch_size=4)
    return train, val


def checkpointed_run(checkpoint_dir: Any, epochs: int, workers: int = 0, loss: Any = None) -> Dict[str, torch.Tensor]:
    """The run of the SIGKILL tests (also run in-process as the uninterrupted reference); returns final weights.

    With ``workers``, the training loader reads through that many persistent worker processes.
    """
    from encdec.training import fit

    extra = {"num_workers": workers, "persistent_workers": True} if workers else {}
    train, val = loaders(**extra)  # 8 items, 2 steps per epoch
    model = tiny_unet(seed=123)  # not the run's seed: a resumed run must take the weights from the checkpoint
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    fit(
        model, train, val, epochs=epochs, optimizer=optimizer,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
        checkpoint_dir=checkpoint_dir, resume=True, seed=0, progress=False, loss=loss,
    )
    return state_of(model)


class ScriptedMetric:
    """A metric whose ``val_score`` follows a fixed script per epoch (``train_score`` copies it).

    ``fit`` calls ``compute`` once for training and once for validation each epoch; the call counter lives on
    the class so the copies ``fit`` makes share it.
    """

    calls = 0
    script: List[float] = []

    def __init__(self, script: List[float]) -> None:
        type(self).calls = 0
        type(self).script = list(script)

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        pass

    def reset(self) -> None:
        pass

    def sync(self) -> None:
        pass

    def compute(self) -> Dict[str, float]:
        cls = type(self)
        value = cls.script[min(cls.calls // 2, len(cls.script) - 1)]
        cls.calls += 1
        return {"score": value}


def state_of(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A detached CPU copy of a model's state dict."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def max_difference(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> float:
    """Largest absolute difference over all entries (inf when the keys differ)."""
    if a.keys() != b.keys():
        return float("inf")
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)
