"""Launched by tests/test_distributed.py as ``torchrun --standalone --nproc_per_node=2 train_distributed.py OUT``.

Each rank trains the tiny U-Net with ``encdec.fit`` on SyntheticShapes (the encoder frozen in the first epoch and
released in the second, at its own learning rate: DistributedDataParallel is rebuilt for the parameters that
train), then writes into OUT:
rank{R}.pt (its final state dict), history{R}.json (its History) and writes{R}.json (the checkpoint files it wrote).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_helpers as helpers  # noqa: E402

import encdec  # noqa: E402
import encdec.atomic as atomic  # noqa: E402
import encdec.weights.save as weights_save  # noqa: E402
from encdec.datasets import SyntheticShapes  # noqa: E402
from encdec.training import fit  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    rank = int(os.environ["RANK"])
    written = []
    original_write = atomic.atomic_write

    def atomic_write(path, write, **kwargs):
        written.append(Path(path).name)
        return original_write(path, write, **kwargs)

    atomic.atomic_write = atomic_write  # what atomic_save and the JSON writers call
    weights_save.atomic_write = atomic_write  # what save_weights calls

    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = encdec.unet(num_classes=3, widths=helpers.WIDTHS)
    train = DataLoader(SyntheticShapes(n=24, size=32, num_classes=3, seed=0), batch_size=4, shuffle=True)
    val = DataLoader(SyntheticShapes(n=10, size=32, num_classes=3, seed=1), batch_size=4)
    history = fit(
        model, train, val, epochs=2, precision="fp32", checkpoint_dir=out / "checkpoints", seed=0, progress=True,
        freeze_encoder=1, encoder_lr=3e-4,
    )
    torch.save(helpers.state_of(model), out / f"rank{rank}.pt")
    (out / f"history{rank}.json").write_text(json.dumps(history.to_dict()))
    (out / f"writes{rank}.json").write_text(json.dumps(written))


if __name__ == "__main__":
    main()
