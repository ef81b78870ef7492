"""``torchrun --nproc_per_node=2`` on the CPU (gloo): encdec.fit trains with DistributedDataParallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))

import training_helpers as helpers  # noqa: E402

from encdec.datasets import SyntheticShapes  # noqa: E402
from encdec.training import evaluate  # noqa: E402

SCRIPT = Path(__file__).resolve().parent / "scripts" / "train_distributed.py"

pytestmark = [
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                       reason="torch.distributed with gloo is not available"),
    pytest.mark.slow,  # part of make test; make check leaves it out
]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT), str(out)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_both_ranks_end_with_identical_weights(ddp_run):
    out, _ = ddp_run
    rank0, rank1 = torch.load(out / "rank0.pt"), torch.load(out / "rank1.pt")
    assert rank0.keys() == rank1.keys()
    different = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    # the ranks started from different weights and trained on different halves of the data, so equal weights
    # mean DDP broadcast rank 0's weights and averaged the gradients (and fit synchronised the BN statistics),
    # the encoder's too once it was released in epoch 2 (a DDP built while it was frozen would not average them)
    assert not different, f"ranks differ in {different[:5]}"


def test_validation_metrics_equal_a_single_process_evaluation(ddp_run):
    out, _ = ddp_run
    history0 = json.loads((out / "history0.json").read_text())
    history1 = json.loads((out / "history1.json").read_text())
    assert history0["epochs"][-1]["val_miou"] == history1["epochs"][-1]["val_miou"]
    import encdec

    model = encdec.unet(num_classes=3, widths=helpers.WIDTHS)
    model.load_state_dict(torch.load(out / "rank0.pt"))
    val = DataLoader(SyntheticShapes(n=10, size=32, num_classes=3, seed=1), batch_size=10)
    single = evaluate(model, val, precision="fp32")
    last = history0["epochs"][-1]
    for key in ("val_miou", "val_pixel_accuracy", "val_dice", "val_mean_accuracy"):
        assert last[key] == pytest.approx(single[key[4:]], abs=1e-12), key
    assert last["val_loss"] == pytest.approx(single["loss"], rel=1e-5)
    # the training data was split: 24 items over 2 ranks, 3 batches of 4 each per epoch
    assert len(history0["epochs"]) == 2


def test_only_rank0_prints_and_writes(ddp_run):
    out, result = ddp_run
    assert json.loads((out / "writes1.json").read_text()) == []
    writes0 = json.loads((out / "writes0.json").read_text())
    assert writes0.count("last.pt") == 2 and writes0.count("history.json") == 2 and writes0.count("metrics.csv") == 2
    assert 1 <= writes0.count("best.pt") == writes0.count("best.safetensors") <= 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "best.pt", "best.safetensors", "history.json", "last.pt", "metrics.csv"
    ]
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"]
