"""Run the SIGKILL test's training; optionally SIGKILL itself mid-epoch or in the middle of a checkpoint write.

Usage: python train_killable.py CHECKPOINT_DIR OUT_WEIGHTS EPOCHS THREADS [--kill-at-item N] [--kill-in-write N]

THREADS            torch.set_num_threads, so the numbers match the test process's reference run bit for bit.
--kill-at-item N   SIGKILL when the training dataset serves its N-th item (counted from 1 in this process).
--kill-in-write N  SIGKILL during the N-th checkpoint file write of this process, after half the file went to
                   the temporary file and before the rename.
Resumes from CHECKPOINT_DIR/last.pt when it exists. Writes the final state dict to OUT_WEIGHTS.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import training_helpers as helpers  # noqa: E402

import encdec.atomic as atomic  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint_dir")
    parser.add_argument("out")
    parser.add_argument("epochs", type=int)
    parser.add_argument("threads", type=int)
    parser.add_argument("--kill-at-item", type=int, default=0)
    parser.add_argument("--kill-in-write", type=int, default=0)
    parser.add_argument("--kill-at-step", type=int, default=0, help="SIGKILL the main process at this loss call")
    parser.add_argument("--workers", type=int, default=0, help="persistent DataLoader workers")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.kill_at_item:
        served = {"count": 0}
        original_getitem = helpers.RandomFlips.__getitem__

        def getitem(self, index):
            served["count"] += 1
            if served["count"] == args.kill_at_item:
                os.kill(os.getpid(), signal.SIGKILL)
            return original_getitem(self, index)

        helpers.RandomFlips.__getitem__ = getitem

    if args.kill_in_write:
        writes = {"count": 0}
        original_write = atomic.atomic_write

        def atomic_write(path, write, handle=False):
            writes["count"] += 1
            if writes["count"] != args.kill_in_write or not handle:
                return original_write(path, write, handle=handle)

            def half_then_die(handle):
                buffer = io.BytesIO()
                write(buffer)
                data = buffer.getvalue()
                handle.write(data[: len(data) // 2])
                handle.flush()
                os.fsync(handle.fileno())
                os.kill(os.getpid(), signal.SIGKILL)

            return original_write(path, half_then_die, handle=True)

        atomic.atomic_write = atomic_write  # what atomic_save (last.pt, best.pt) calls

    loss = None
    if args.kill_at_step:
        calls = {"count": 0}
        cross_entropy = torch.nn.CrossEntropyLoss()

        def loss(logits, targets):
            calls["count"] += 1
            if calls["count"] == args.kill_at_step:
                os.kill(os.getpid(), signal.SIGKILL)
            return cross_entropy(logits, targets)

    torch.save(helpers.checkpointed_run(args.checkpoint_dir, args.epochs, args.workers, loss), args.out)


if __name__ == "__main__":
    main()
