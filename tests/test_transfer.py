"""Transfer learning in fit and encdec train: a frozen encoder (parameters and BatchNorm statistics), its release,
its own learning rate, an exact resume in the middle of a freeze; and fit's refusal of a folder holding a run."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import encdec
from encdec.cli import main
from encdec.datasets import SyntheticShapes
from encdec.training import fit
from encdec.training.state import LAST, load_checkpoint

WIDTHS = (4, 8, 16, 32, 64)


def tiny_unet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return encdec.unet(num_classes=3, widths=WIDTHS)


def loader(n: int = 8, seed: int = 0) -> DataLoader:
    return DataLoader(SyntheticShapes(n=n, size=32, seed=seed), batch_size=4, shuffle=True)


def snapshot(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, module: nn.Module) -> list:
    return [k for k, v in module.state_dict().items() if not torch.equal(before[k], v)]


def run_fit(model, folder, **options):
    options.setdefault("progress", False)
    options.setdefault("seed", 0)
    options.setdefault("precision", "fp32")
    return fit(model, loader(), loader(4, seed=1), checkpoint_dir=folder, **options)


def test_a_frozen_encoder_changes_no_tensor_and_trains_after_its_release(tmp_path):
    model = tiny_unet()
    encoder_before, decoder_before = snapshot(model.encoder), snapshot(model.decoder)
    buffers = [k for k, _ in model.encoder.named_buffers()]
    assert any(k.endswith("running_mean") for k in buffers)  # the statistics are among the tensors compared

    def adamw(groups):  # weight decay would move every parameter it is applied to
        return torch.optim.AdamW(groups, lr=1e-2, weight_decay=0.1)

    run_fit(model, tmp_path, epochs=2, freeze_encoder=2, optimizer=adamw)
    assert changed(encoder_before, model.encoder) == []  # weights and BatchNorm buffers, all of them
    assert len(changed(decoder_before, model.decoder)) > 0  # while the decoder trained
    assert all(p.requires_grad for p in model.parameters())  # fit leaves the model trainable
    assert all(m.training for m in model.modules())

    run_fit(model, tmp_path, epochs=3, resume=True, optimizer=adamw)  # epoch 3: released
    moved = changed(encoder_before, model.encoder)
    assert any(k.endswith("weight") for k in moved) and any(k.endswith("running_mean") for k in moved)


def test_requires_grad_alone_lets_the_batchnorm_statistics_move(tmp_path):
    """What the freeze guards against: an encoder frozen by hand still changes during training."""
    model = tiny_unet()
    model.encoder.requires_grad_(False)
    before = snapshot(model.encoder)
    run_fit(model, tmp_path, epochs=1)
    moved = changed(before, model.encoder)
    assert moved and all("running" in k or "num_batches" in k for k in moved)


def test_momentum_and_weight_decay_do_not_move_a_frozen_encoder(tmp_path):
    model = tiny_unet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    run_fit(model, tmp_path / "first", epochs=1, optimizer=optimizer)  # momentum buffers for every parameter
    assert all(optimizer.state[p].get("momentum_buffer") is not None for p in model.encoder.parameters())
    before = snapshot(model.encoder)
    run_fit(model, tmp_path / "second", epochs=1, optimizer=optimizer, freeze_encoder=True)
    assert changed(before, model.encoder) == []


def test_a_run_resumed_in_the_middle_of_a_freeze_ends_with_the_same_weights(tmp_path):
    whole = tiny_unet()
    run_fit(whole, tmp_path / "whole", epochs=3, freeze_encoder=2, encoder_lr=3e-4)
    parts = tiny_unet()
    run_fit(parts, tmp_path / "parts", epochs=1, freeze_encoder=2, encoder_lr=3e-4)  # stopped after epoch 1
    run_fit(parts, tmp_path / "parts", epochs=3, resume=True)  # freeze and encoder_lr come from the checkpoint
    expected, got = whole.state_dict(), parts.state_dict()
    assert [k for k in expected if not torch.equal(expected[k], got[k])] == []
    assert load_checkpoint(tmp_path / "parts" / LAST)["settings"]["freeze_encoder"] == 2


def test_a_resume_with_another_freeze_is_refused(tmp_path):
    model = tiny_unet()
    run_fit(model, tmp_path, epochs=1, freeze_encoder=2)
    with pytest.raises(ValueError, match=r"last\.pt with freeze_encoder=True: that run was started with "
                                         r"freeze_encoder=2"):
        run_fit(model, tmp_path, epochs=2, resume=True, freeze_encoder=True)


def test_encoder_lr_reaches_the_optimizer_groups(tmp_path):
    model = tiny_unet()
    history = run_fit(model, tmp_path / "adam", epochs=1, encoder_lr=1e-4)
    groups = load_checkpoint(tmp_path / "adam" / LAST)["optimizer"]["param_groups"]
    encoder_count = sum(1 for p in model.encoder.parameters())
    assert [(g.get("name"), g["lr"], len(g["params"])) for g in groups] == [
        ("decoder", 1e-3, sum(1 for _ in model.parameters()) - encoder_count), ("encoder", 1e-4, encoder_count)]
    assert (history.epochs[0]["lr"], history.epochs[0]["encoder_lr"]) == (1e-3, 1e-4)

    seen = []

    def sgd(groups):
        seen.append(groups)
        return torch.optim.SGD(groups, lr=0.1)

    run_fit(tiny_unet(), tmp_path / "sgd", epochs=1, encoder_lr=0.01, optimizer=sgd)
    groups = load_checkpoint(tmp_path / "sgd" / LAST)["optimizer"]["param_groups"]
    assert [g["lr"] for g in groups] == [0.1, 0.01] and len(seen) == 1


def test_encoder_lr_with_a_built_optimizer_is_refused_with_the_way_out(tmp_path):
    model = tiny_unet()
    with pytest.raises(ValueError, match="optimizer=lambda groups"):
        run_fit(model, tmp_path, epochs=1, encoder_lr=1e-4, optimizer=torch.optim.Adam(model.parameters()))


@pytest.mark.parametrize("option", [{"freeze_encoder": True}, {"encoder_lr": 1e-4}])
def test_a_model_without_an_encoder_is_refused_by_name(tmp_path, option):
    model = encdec.resfcn18(num_classes=3, input_size=32)
    with pytest.raises(ValueError, match="^resfcn18 has no encoder to freeze"):
        fit(model, loader(), epochs=1, progress=False, checkpoint_dir=tmp_path, **option)
    assert not (tmp_path / LAST).exists()


@pytest.mark.parametrize("value", [-1, 1.5, "2"])
def test_a_bad_freeze_encoder_is_refused(value):
    with pytest.raises(ValueError, match="freeze_encoder must be True"):
        fit(tiny_unet(), loader(), epochs=1, progress=False, freeze_encoder=value)


def test_a_classifier_freezes_its_features():
    torch.manual_seed(0)
    model = encdec.custom_cnn(num_classes=3)
    data = [(torch.randn(3, 32, 32), i % 3) for i in range(8)]
    before_features, before_head = snapshot(model.features), snapshot(model.head)
    fit(model, DataLoader(data, batch_size=4), epochs=1, progress=False, freeze_encoder=True, precision="fp32")
    assert changed(before_features, model.features) == [] and changed(before_head, model.head)


# ------------------------------------------------------------------------ a folder holding another run


def test_fit_refuses_a_folder_holding_another_run_and_names_the_way_out(tmp_path):
    run_fit(tiny_unet(), tmp_path, epochs=1)
    first = (tmp_path / "best.safetensors").read_bytes()
    with pytest.raises(FileExistsError) as caught:
        run_fit(tiny_unet(seed=1), tmp_path, epochs=1)
    message = str(caught.value)
    assert f"checkpoint_dir {tmp_path} holds an earlier run" in message
    assert "resume=True" in message and "overwrite=True" in message and "best.safetensors" in message
    assert (tmp_path / "best.safetensors").read_bytes() == first  # nothing was touched

    (tmp_path / "notes.txt").write_text("mine")
    run_fit(tiny_unet(seed=1), tmp_path, epochs=1, overwrite=True)
    assert (tmp_path / "best.safetensors").read_bytes() != first
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the run's files are replaced
    with pytest.raises(ValueError, match="pass one of them"):
        run_fit(tiny_unet(), tmp_path, epochs=2, resume=True, overwrite=True)


# ------------------------------------------------------------------------------------- encdec train


def test_train_freezes_the_encoder_and_resume_continues_the_plan(capsys, tmp_path):
    out = tmp_path / "run"
    base = ["train", "--model", "unet", "--arg", "widths=[4,8,16,32,64]", "--data", "shapes:8", "--size", "32",
            "--out", str(out), "--no-plots", "--quiet", "--device", "cpu", "--precision", "fp32"]
    assert main(base + ["--epochs", "1", "--freeze-encoder", "2", "--encoder-lr", "1e-4"]) == 0
    assert "encoder frozen for 2 epochs, encoder lr 0.0001" in capsys.readouterr().err
    state = load_checkpoint(out / LAST)
    assert (state["settings"]["freeze_encoder"], state["settings"]["encoder_lr"]) == (2, 1e-4)
    assert [g.get("name") for g in state["optimizer"]["param_groups"]] == ["decoder", "encoder"]
    assert main(base + ["--epochs", "2", "--resume"]) == 0  # the freeze and the groups come from last.pt
    assert load_checkpoint(out / LAST)["epoch"] == 2


def test_train_refuses_to_freeze_a_model_without_an_encoder(capsys, tmp_path):
    code = main(["train", "--model", "resfcn18", "--arg", "input_size=32", "--data", "shapes:4", "--size", "32",
                 "--out", str(tmp_path / "run"), "--freeze-encoder", "--quiet", "--device", "cpu"])
    assert code == 2
    assert "resfcn18 has no encoder to freeze" in capsys.readouterr().err
    assert not (tmp_path / "run" / LAST).exists()
