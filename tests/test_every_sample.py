"""Every training sample is seen once per epoch: ``encdec train``'s loader leaves nothing out, and ``fit`` joins a
last batch of one sample to the batch before it instead of failing in BatchNorm."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import encdec
from encdec.cli.train import training_loader
from encdec.datasets import SyntheticShapes
from encdec.training._data import reproducible_loader, set_data_epoch


class Indices(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        return torch.tensor(i), i


# (samples, batch): the Pet course recipe on 24 images, the dog recipes on 27, CIFAR-10's on 899, the VOC report's
# 50 images (4 batches there), and sizes whose last batch would hold one sample.
CASES = [(24, 16), (27, 16), (899, 100), (50, 16), (17, 8), (33, 16), (5, 4), (3, 2), (8, 8), (9, 16)]


@pytest.mark.parametrize("samples, batch", CASES, ids=[f"{n}x{b}" for n, b in CASES])
def test_the_cli_loader_sees_every_index_once_per_epoch(samples, batch):
    loader = reproducible_loader(training_loader(Indices(samples), min(batch, samples), workers=0), seed=3)
    orders = []
    for epoch in range(3):
        set_data_epoch(loader, epoch, 3)
        batches = [labels.tolist() for _, labels in loader]
        seen = [i for b in batches for i in b]
        assert sorted(seen) == list(range(samples)), f"epoch {epoch}: {len(seen)} of {samples} seen"
        assert len(batches) == len(loader)
        assert len(batches) == 1 or min(len(b) for b in batches) > 1  # never a lone sample in a batch
        orders.append(seen)
    assert samples < 4 or orders[0] != orders[1]  # still shuffled per epoch
    expected = -(-samples // batch) - (1 if samples > batch and samples % batch == 1 else 0)
    assert len(loader) == expected


def test_drop_last_still_drops_when_asked():
    loader = reproducible_loader(DataLoader(Indices(17), batch_size=8, shuffle=True, drop_last=True), seed=0)
    assert [len(labels) for _, labels in loader] == [8, 8]


def test_fit_trains_through_a_last_batch_of_one(capsys):
    model = encdec.vgg16_cifar(num_classes=3)  # BatchNorm1d in its classifier
    with pytest.raises(ValueError, match="more than 1 value per channel"):  # what a batch of one would do
        model.train()(torch.zeros(1, 3, 32, 32))
    data = SyntheticShapes(n=9, size=32, task="classification")
    train = DataLoader(data, batch_size=4, shuffle=True)
    history = encdec.fit(model, train, epochs=2, seed=0, precision="fp32", channels_last=False, progress=True)
    assert len(history) == 2
    err = capsys.readouterr().err
    assert err.count("last batch holds 5 samples") == 1
