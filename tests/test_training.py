"""encdec.fit / evaluate / History / seed_everything on the CPU, with tiny models and SyntheticShapes."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))

import training_helpers as helpers  # noqa: E402

import encdec  # noqa: E402
from encdec.datasets import SyntheticShapes  # noqa: E402
from encdec.training import (  # noqa: E402
    History,
    NonFiniteLossError,
    evaluate,
    fit,
    resolve_precision,
    seed_everything,
    seed_worker,
)

SCRIPTS = Path(__file__).resolve().parent / "scripts"
EPOCHS = 5


# ---------------------------------------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real training run shared by the tests that only inspect its results."""
    seed_everything(0)
    model = helpers.tiny_unet(num_classes=2, seed=0)  # circles against background
    train = DataLoader(SyntheticShapes(n=64, size=32, num_classes=2, seed=0), batch_size=8, shuffle=True)
    val = DataLoader(SyntheticShapes(n=32, size=32, num_classes=2, seed=1), batch_size=16)
    before = evaluate(model, val, precision="fp32")
    directory = tmp_path_factory.mktemp("run")
    history = fit(
        model, train, val, epochs=EPOCHS, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
        checkpoint_dir=directory, seed=0, progress=False,
    )
    after = evaluate(model, val, precision="fp32")
    return {"model": model, "history": history, "before": before, "after": after, "dir": directory, "val": val}


@pytest.mark.slow  # make test runs it; the quick loop leaves it out
def test_fit_reaches_clearly_higher_miou(trained):
    before, after = trained["before"]["miou"], trained["after"]["miou"]
    margin = 0.25  # measured on this CPU: 0.12 before, 0.66 (fp32) / 0.68 (bf16) after
    assert after >= before + margin, (
        f"validation mIoU before training {before:.4f}, after {EPOCHS} epochs {after:.4f}; expected a gain of at least "
        f"{margin} (history: {trained['history']['val_miou']})"
    )
    assert trained["after"]["loss"] < trained["before"]["loss"]


@pytest.mark.slow  # make test runs it; the quick loop leaves it out
def test_history_records_every_epoch(trained):
    history: History = trained["history"]
    assert len(history) == EPOCHS
    assert history["epoch"] == list(range(1, EPOCHS + 1))
    for key in ("train_loss", "val_loss", "train_miou", "val_miou", "val_dice", "lr", "seconds", "images_per_second"):
        values = history[key]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), (key, values)
    assert history["lr"] == [pytest.approx(3e-3)] * EPOCHS
    assert all(v > 0 for v in history["images_per_second"])
    assert history.monitor == "val_miou" and history.mode == "max"
    best = max(range(EPOCHS), key=lambda i: history["val_miou"][i])
    assert history.best_epoch == best + 1
    assert history.best_value == pytest.approx(history["val_miou"][best])
    # validation numbers of the last epoch are those of an evaluation of the final weights
    assert history["val_miou"][-1] == pytest.approx(_eval_in_precision(trained, history), abs=1e-9)
    with pytest.raises(KeyError, match="val_miou"):
        history["no_such_key"]


def _eval_in_precision(trained, history):
    precision = resolve_precision("auto", torch.device("cpu"))
    return evaluate(trained["model"], trained["val"], precision=precision)["miou"]


@pytest.mark.slow  # make test runs it; the quick loop leaves it out
def test_history_json_roundtrip_and_plot(trained, tmp_path):
    history: History = trained["history"]
    saved = json.loads((trained["dir"] / "history.json").read_text())
    assert saved["epochs"] == json.loads(json.dumps(history.to_dict()))["epochs"]
    again = History.from_dict(json.loads(history.save_json(tmp_path / "h.json").read_text()))
    assert again["val_miou"] == history["val_miou"] and again.best_epoch == history.best_epoch
    pytest.importorskip("matplotlib")
    from PIL import Image

    path = history.plot(tmp_path / "curves.png")
    with Image.open(path) as image:
        assert image.size[0] > 300 and image.size[1] > 200
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # something was drawn


def test_history_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    history = History()
    history.append({"epoch": 1, "train_loss": 1.0})
    with pytest.raises(ImportError, match=r"encdec\[plot\]"):
        history.plot(tmp_path / "x.png")


@pytest.mark.slow  # make test runs it; the quick loop leaves it out
def test_checkpoint_files_hold_the_best_and_last_weights(trained):
    from safetensors.torch import load_file

    from encdec.weights import read_metadata

    directory, history, model = trained["dir"], trained["history"], trained["model"]
    assert sorted(p.name for p in directory.iterdir()) == ["best.pt", "best.safetensors", "history.json", "last.pt",
                                                          "metrics.csv"]
    last = torch.load(directory / "last.pt", weights_only=True)
    assert last["epoch"] == EPOCHS
    final = helpers.state_of(model)
    assert helpers.max_difference({k: v.cpu() for k, v in last["model"].items()}, final) == 0.0
    best = torch.load(directory / "best.pt", weights_only=True)
    assert best["epoch"] == history.best_epoch
    weights = load_file(directory / "best.safetensors")
    assert helpers.max_difference(weights, {k: v.cpu() for k, v in best["model"].items()}) == 0.0
    meta = read_metadata(directory / "best.safetensors")
    assert int(meta["epoch"]) == history.best_epoch and meta["monitor"] == "val_miou"
    assert meta["architecture"] == "unet"


def test_classifier_defaults_monitor_accuracy():
    import encdec

    seed_everything(0)
    model = encdec.custom_cnn(num_classes=3)
    data = SyntheticShapes(n=16, size=32, num_classes=3, task="classification", seed=0)
    history = fit(model, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8), epochs=1, progress=False)
    assert history.monitor == "val_accuracy"
    assert 0.0 <= history["val_accuracy"][0] <= 1.0
    assert "val_top5_accuracy" not in history.keys()  # top-5 of 3 classes is dropped


# ---------------------------------------------------------------------------------------------- resume


def _resumable_run(directory, epochs, *, resume=None, model_seed=0, early_stopping=None, monitor=None):
    train, val = helpers.loaders()
    model = helpers.tiny_unet(seed=model_seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    history = fit(
        model, train, val, epochs=epochs, optimizer=optimizer,
        scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.7),
        checkpoint_dir=directory, resume=resume, seed=0, progress=False, early_stopping=early_stopping,
        monitor=monitor,
    )
    return model, optimizer, history


@pytest.mark.slow  # make test runs it; the quick loop leaves it out
def test_resume_equals_uninterrupted_run(tmp_path):
    full_model, full_opt, full_history = _resumable_run(tmp_path / "full", 4)
    _resumable_run(tmp_path / "split", 2)
    # a different initial model: everything must come from the checkpoint
    model, optimizer, history = _resumable_run(tmp_path / "split", 4, resume=True, model_seed=7)
    difference = helpers.max_difference(helpers.state_of(model), helpers.state_of(full_model))
    assert difference == 0.0, f"resumed weights differ from the uninterrupted run by {difference}"
    a, b = optimizer.state_dict(), full_opt.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for key in a["state"]:
        for name, value in a["state"][key].items():
            assert torch.equal(value, b["state"][key][name]), (key, name)
    strip = ("seconds", "train_seconds", "images_per_second")
    assert [{k: v for k, v in r.items() if k not in strip} for r in history.epochs] == [
        {k: v for k, v in r.items() if k not in strip} for r in full_history.epochs
    ]
    assert history["lr"] == pytest.approx([2e-3 * 0.7**i for i in range(4)])


def test_resume_from_explicit_path_and_when_already_done(tmp_path):
    _resumable_run(tmp_path / "a", 2)
    model, _, history = _resumable_run(tmp_path / "b", 2, resume=tmp_path / "a" / "last.pt", model_seed=3)
    assert len(history) == 2  # nothing left to train
    saved = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    assert helpers.max_difference(helpers.state_of(model), saved) == 0.0
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        _resumable_run(tmp_path / "c", 2, resume=tmp_path / "nope.pt")


def test_resume_true_without_checkpoint_starts_fresh(tmp_path):
    _, _, history = _resumable_run(tmp_path / "fresh", 1, resume=True)
    assert len(history) == 1 and (tmp_path / "fresh" / "last.pt").is_file()


def test_resume_refuses_a_different_model_or_optimizer(tmp_path):
    _resumable_run(tmp_path, 1)
    train, val = helpers.loaders()
    other = helpers.tiny_unet(num_classes=4)
    with pytest.raises(ValueError, match=r"different model.*\(3, 8, 1, 1\) vs \(4, 8, 1, 1\)"):
        fit(other, train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False,
            optimizer=torch.optim.Adam(other.parameters(), lr=2e-3))
    model = helpers.tiny_unet()
    with pytest.raises(ValueError, match="optimizer: checkpoint Adam, this run SGD"):
        fit(model, train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False,
            optimizer=torch.optim.SGD(model.parameters(), lr=2e-3))
    with pytest.raises(ValueError, match="optimizer setting lr: checkpoint 0.002, this run 0.1"):
        fit(model, train, val, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False,
            optimizer=torch.optim.Adam(model.parameters(), lr=0.1))


def test_resume_compares_what_builds_the_model_not_what_is_recorded_beside_it():
    from encdec.training.state import compare_fingerprints, model_fingerprint, optimizer_fingerprint

    model = helpers.tiny_unet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    saved = model_fingerprint(model)
    # encdec train records the data's class names and preprocessing on the model before fit (best.safetensors
    # carries them); a checkpoint written without them still resumes
    model.encdec_config.update(class_names=["background", "circle", "square"], preprocessing={"size": [32, 32]})
    compare_fingerprints(saved, model, optimizer_fingerprint(optimizer), optimizer, "last.pt")
    model.encdec_config["kwargs"] = {**model.encdec_config["kwargs"], "in_channels": 4}
    with pytest.raises(ValueError, match="model config: checkpoint"):
        compare_fingerprints(saved, model, optimizer_fingerprint(optimizer), optimizer, "last.pt")


def _run_script(*args, poll_dir=None, timeout=120):
    """Run train_killable.py; while it runs, keep loading every checkpoint file it has renamed into place."""
    # A process that ran DataLoaders with workers keeps PyTorch's SIGCHLD handler, which raises in whatever runs
    # when a child dies by a signal; the child killed here is ours, so the default action applies while it runs.
    previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "train_killable.py"), *map(str, args)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        loads = 0
        deadline = time.monotonic() + timeout
        while process.poll() is None and time.monotonic() < deadline:
            if poll_dir is not None:
                loads += _load_all_checkpoints(poll_dir)
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
        output = process.communicate()[0].decode(errors="replace")
    finally:
        signal.signal(signal.SIGCHLD, previous)
    return process.returncode, output, loads


def _load_all_checkpoints(directory: Path) -> int:
    from safetensors.torch import load_file

    count = 0
    for path in sorted(Path(directory).glob("*")):
        if path.name.startswith("."):
            continue  # temporary files are never read by anyone
        try:
            if path.suffix == ".pt":
                torch.load(path, weights_only=True)
            elif path.suffix == ".safetensors":
                load_file(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".csv":
                assert path.read_text().endswith("\n")  # whole rows only
        except FileNotFoundError:
            continue  # replaced between glob and open
        count += 1
    return count


@pytest.mark.slow
def test_sigkill_mid_epoch_and_mid_write_then_resume_matches_uninterrupted(tmp_path):
    epochs, threads = 3, torch.get_num_threads()
    run = tmp_path / "killed"
    # 1) killed by SIGKILL while serving item 6 of epoch 2 (8 items per epoch in batches of 4: the 2nd step)
    code, output, loads = _run_script(run, tmp_path / "x.pt", epochs, threads, "--kill-at-item", 8 + 6, poll_dir=run)
    assert code == -9, f"expected SIGKILL, got {code}: {output}"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    # 2) resumed, then killed half-way through writing the next last.pt
    code, output, loads2 = _run_script(run, tmp_path / "x.pt", epochs, threads, "--kill-in-write", 1, poll_dir=run)
    assert code == -9, f"expected SIGKILL, got {code}: {output}"
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert leftovers, "the kill should have left a half-written temporary file"
    assert _load_all_checkpoints(run) == 5  # last.pt, best.pt, best.safetensors, history.json, metrics.csv
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    # 3) resumed to the end
    code, output, loads3 = _run_script(run, tmp_path / "resumed.pt", epochs, threads, poll_dir=run)
    assert code == 0, output
    assert not [p.name for p in run.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]
    assert loads + loads2 + loads3 > 0
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history["epochs"]] == [1, 2, 3]
    # the uninterrupted reference, in this process with the same thread count
    reference = helpers.checkpointed_run(tmp_path / "uninterrupted", epochs)
    difference = helpers.max_difference(torch.load(tmp_path / "resumed.pt"), reference)
    assert difference == 0.0, f"killed-and-resumed weights differ from the uninterrupted run by {difference}"


@pytest.mark.slow
def test_sigkill_with_two_persistent_workers_then_resume_matches_uninterrupted(tmp_path):
    epochs, threads = 3, torch.get_num_threads()
    run = tmp_path / "killed"
    # killed in the main process at the first step of epoch 2, workers alive (loss calls per epoch: 2 training
    # steps, then 1 validation batch)
    code, output, _ = _run_script(run, tmp_path / "x.pt", epochs, threads, "--workers", 2, "--kill-at-step", 4,
                                  poll_dir=run)
    assert code == -9, f"expected SIGKILL, got {code}: {output}"
    assert torch.load(run / "last.pt", weights_only=True)["epoch"] == 1
    code, output, _ = _run_script(run, tmp_path / "resumed.pt", epochs, threads, "--workers", 2, poll_dir=run)
    assert code == 0, output
    # the uninterrupted reference runs its data workers in a process of its own too: data workers started in the
    # test process would leave PyTorch's SIGCHLD handler behind, which a parallel test runner's process must not keep
    code, output, _ = _run_script(tmp_path / "uninterrupted", tmp_path / "reference.pt", epochs, threads,
                                  "--workers", 2)
    assert code == 0, output
    reference = torch.load(tmp_path / "reference.pt")
    difference = helpers.max_difference(torch.load(tmp_path / "resumed.pt"), reference)
    assert difference == 0.0, f"resumed weights differ from the uninterrupted run by {difference}"
    no_workers = helpers.checkpointed_run(tmp_path / "no_workers", epochs)
    assert helpers.max_difference(no_workers, reference) == 0.0  # the data do not depend on the workers either


# ---------------------------------------------------------------------------------------------- optimisation details


class _NoBatchNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 1))

    def forward(self, x):
        return self.body(x)


class _Unsized:
    """A loader without ``__len__`` (like an IterableDataset's): the last group's size is unknown while it runs."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __iter__(self):
        return iter(self.loader)


@pytest.mark.parametrize("sized", [True, False], ids=["sized", "unsized"])
@pytest.mark.parametrize("samples", [8, 6])
def test_accumulation_equals_one_large_batch(samples, sized):
    data = SyntheticShapes(n=samples, size=16, num_classes=3, seed=0)

    def one_epoch(batch_size, accumulate):
        torch.manual_seed(0)
        model = _NoBatchNorm()
        loader = DataLoader(data, batch_size=batch_size)
        fit(model, loader if sized else _Unsized(loader), epochs=1, accumulate_steps=accumulate,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.5), precision="fp32", channels_last=False,
            progress=False)
        return helpers.state_of(model)

    torch.manual_seed(0)
    start = helpers.state_of(_NoBatchNorm())
    big = one_epoch(samples, 1)
    small = one_epoch(2, 4)  # 8 samples: 4 batches, one step; 6 samples: a trailing group of 3 batches
    assert helpers.max_difference(big, start) > 1e-3  # the step did something
    assert helpers.max_difference(big, small) < 1e-6


def test_gradient_clipping_bounds_the_step():
    data = SyntheticShapes(n=4, size=16, num_classes=3, seed=0)
    torch.manual_seed(0)
    model = _NoBatchNorm()
    start = helpers.state_of(model)
    fit(model, DataLoader(data, batch_size=4), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
        clip_grad_norm=1e-3, precision="fp32", progress=False)
    step = torch.cat([(helpers.state_of(model)[k] - start[k]).flatten() for k in start])
    assert 0 < step.norm() <= 1e-3 * (1 + 1e-4)


def test_schedulers_step_per_epoch_or_per_optimizer_step():
    data = SyntheticShapes(n=8, size=16, num_classes=3, seed=0)
    loader = DataLoader(data, batch_size=2)  # 4 batches per epoch
    torch.manual_seed(0)
    model = _NoBatchNorm()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    one_cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=4)
    fit(model, loader, epochs=2, optimizer=optimizer, scheduler=one_cycle, accumulate_steps=2, progress=False,
        precision="fp32")
    assert one_cycle.last_epoch == 4  # 2 epochs x 2 optimizer steps

    history = fit(model, loader, epochs=3, progress=False, precision="fp32",
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5))
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])

    with pytest.raises(ValueError, match="mode='max'"):
        fit(model, loader, loader, epochs=1, progress=False, precision="fp32", monitor="val_miou",
            scheduler=lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min"))


def test_bf16_and_channels_last_reach_the_model():
    seen = {}

    class Probe(_NoBatchNorm):
        def forward(self, x):
            seen["channels_last"] = x.is_contiguous(memory_format=torch.channels_last)
            out = super().forward(x)
            seen["dtype"] = out.dtype
            return out

    data = SyntheticShapes(n=4, size=16, num_classes=3, seed=0)
    fit(Probe(), DataLoader(data, batch_size=4), epochs=1, precision="bf16", channels_last=True, progress=False)
    assert seen == {"channels_last": True, "dtype": torch.bfloat16}
    fit(Probe(), DataLoader(data, batch_size=4), epochs=1, precision="fp32", channels_last=False, progress=False)
    assert seen == {"channels_last": False, "dtype": torch.float32}


# ---------------------------------------------------------------------------------------------- stopping


class _NanAt:
    """Cross entropy that returns NaN on its ``at``-th call."""

    def __init__(self, at: int) -> None:
        self.at, self.calls = at, 0

    def __call__(self, logits, target):
        self.calls += 1
        value = nn.functional.cross_entropy(logits, target)
        return value * float("nan") if self.calls == self.at else value


def test_nan_loss_stops_with_error_naming_epoch_step_and_checkpoint(tmp_path):
    train, val = helpers.loaders()  # 2 steps per epoch
    model = helpers.tiny_unet()
    loss = _NanAt(2 + 1 + 2)  # epoch 1: 2 training calls + 1 validation call; then step 2 of epoch 2
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, step 2 of 2") as caught:
        fit(model, train, val, epochs=3, loss=loss, checkpoint_dir=tmp_path, progress=False, precision="fp32")
    error = caught.value
    assert (error.epoch, error.step) == (2, 2)
    assert error.checkpoint == tmp_path / "last.pt" and str(tmp_path / "last.pt") in str(error)
    assert "resume=True" in str(error)
    saved = torch.load(error.checkpoint, weights_only=True)
    assert saved["epoch"] == 1
    # the first step of epoch 2 was taken, the NaN one was not
    assert helpers.max_difference(helpers.state_of(model), saved["model"]) > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.slow
def test_early_stopping_restores_the_best_epoch(tmp_path):
    def run(epochs, script, **kwargs):
        train, val = helpers.loaders()
        model = helpers.tiny_unet()
        history = fit(model, train, val, epochs=epochs, metrics=helpers.ScriptedMetric(script), seed=0,
                      progress=False, monitor="val_score", precision="fp32", **kwargs)
        return model, history

    reference, _ = run(2, [0.1, 0.5])
    model, history = run(10, [0.1, 0.5, 0.3, 0.2, 0.4, 0.9], early_stopping=3, checkpoint_dir=tmp_path)
    assert history.stopped_early and len(history) == 5  # epochs 3, 4, 5 did not beat epoch 2
    assert history.best_epoch == 2 and history.best_value == 0.5
    assert helpers.max_difference(helpers.state_of(model), helpers.state_of(reference)) == 0.0
    from safetensors.torch import load_file

    assert helpers.max_difference(load_file(tmp_path / "best.safetensors"), helpers.state_of(reference)) == 0.0
    # resuming a run that stopped early keeps the decision and still hands back the best weights
    resumed, again = run(10, [0.0], early_stopping=3, checkpoint_dir=tmp_path, resume=True)
    assert len(again) == 5 and again.stopped_early and again.best_epoch == 2
    assert helpers.max_difference(helpers.state_of(resumed), helpers.state_of(reference)) == 0.0


def test_early_stopping_restores_the_best_weights_even_after_an_error():
    train, val = helpers.loaders()
    seed_everything(0)
    reference = helpers.tiny_unet()
    fit(reference, train, val, epochs=1, seed=0, progress=False, precision="fp32")
    model = helpers.tiny_unet()
    with pytest.raises(NonFiniteLossError):
        fit(model, train, val, epochs=4, seed=0, progress=False, precision="fp32", loss=_NanAt(3 * 2 + 2),
            early_stopping=5, metrics=helpers.ScriptedMetric([0.9, 0.1, 0.1]), monitor="val_score")
    assert helpers.max_difference(helpers.state_of(model), helpers.state_of(reference)) == 0.0


# ---------------------------------------------------------------------------------------------- reproducibility


def _seeded_run(seed, workers=0):
    seed_everything(seed)
    model = helpers.tiny_unet(seed=seed)
    train, _ = helpers.loaders(n=8, size=16, batch_size=4, num_workers=workers, worker_init_fn=seed_worker)
    fit(model, train, epochs=1, seed=seed, progress=False)
    return helpers.state_of(model)


def test_seed_gives_identical_weights():
    a, b = _seeded_run(0), _seeded_run(0)
    assert helpers.max_difference(a, b) == 0.0
    assert helpers.max_difference(a, _seeded_run(1)) > 0


def test_seed_with_dataloader_workers_is_reproducible():
    a, b = _seeded_run(5, workers=2), _seeded_run(5, workers=2)
    assert helpers.max_difference(a, b) == 0.0


def test_seed_everything_rejects_bad_seeds():
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything(-1)
    with pytest.raises(ValueError, match="seed must be an integer"):
        seed_everything("0")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- evaluate


def test_evaluate_matches_counts_computed_by_hand():
    torch.manual_seed(0)
    model = helpers.tiny_unet()
    data = SyntheticShapes(n=12, size=32, num_classes=3, seed=2)
    model.train()
    scores = evaluate(model, DataLoader(data, batch_size=5), precision="fp32")
    assert model.training  # mode restored
    model.eval()
    images = torch.stack([data[i][0] for i in range(12)])
    masks = torch.stack([data[i][1] for i in range(12)])
    with torch.no_grad():
        logits = model(images)
    pred = logits.argmax(1).numpy().ravel()
    target = masks.numpy().ravel()
    cm = np.bincount(target * 3 + pred, minlength=9).reshape(3, 3).astype(float)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert scores["miou"] == pytest.approx(np.nanmean(iou), abs=1e-6)
    assert scores["pixel_accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-6)
    expected_loss = float(nn.functional.cross_entropy(logits, masks))
    assert scores["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert "loss" not in evaluate(model, DataLoader(data, batch_size=5), loss=None, precision="fp32")
    with pytest.raises(ValueError, match="loss must be a callable, 'default' or None, got 'mse'"):
        evaluate(model, DataLoader(data, batch_size=5), loss="mse")


# ---------------------------------------------------------------------------------------------- user errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"epochs": 1, "accumulate_steps": 0}, "accumulate_steps must be a positive integer, got 0"),
        ({"epochs": 1, "precision": "fp8"}, "precision='fp8' is not supported; use one of auto, fp32, bf16, fp16"),
        ({"epochs": 1, "precision": "fp16", "device": "cpu"}, "precision='fp16' needs a CUDA device"),
        ({"epochs": 1, "resume": True}, "resume=True .* needs checkpoint_dir"),
        ({"epochs": 1, "channels_last": "yes"}, "channels_last must be True, False, 'auto' or 'measure', got 'yes'"),
        ({"epochs": 1, "early_stopping": 0}, r"early_stopping \(patience in epochs\) must be a positive integer"),
        ({"epochs": 1, "clip_grad_norm": -1.0}, "clip_grad_norm must be a positive number"),
        ({"epochs": 1, "device": "potato"}, "device='potato' is not a device"),
        ({"epochs": 1, "scheduler_interval": "batch"}, "scheduler_interval must be 'auto', 'epoch' or 'step'"),
        ({"epochs": 1, "monitor": "val_miou"}, "monitor='val_miou' needs a val_loader"),
        (
            {"epochs": 1, "scheduler": torch.optim.lr_scheduler.ReduceLROnPlateau, "scheduler_interval": "step"},
            "scheduler_interval='step' cannot drive ReduceLROnPlateau",
        ),
        (
            {"epochs": 1, "scheduler": torch.optim.lr_scheduler.StepLR(
                torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0), step_size=1)},
            "scheduler is bound to a different optimizer",
        ),
    ],
)
def test_fit_names_bad_arguments(kwargs, message):
    loader = DataLoader(TensorDataset(torch.zeros(2, 3, 16, 16), torch.zeros(2, 16, 16, dtype=torch.long)))
    with pytest.raises(ValueError, match=message):
        fit(_NoBatchNorm(), loader, progress=False, **kwargs)


class _MustNotBeRead(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        raise AssertionError("training started before the checkpoint directory was checked")


def test_unwritable_checkpoint_dir_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    loader = DataLoader(_MustNotBeRead(), batch_size=2)
    with pytest.raises(PermissionError, match="a-file/run.*not a writable directory"):
        fit(_NoBatchNorm(), loader, epochs=1, checkpoint_dir=blocker / "run", progress=False)
    if hasattr(os, "geteuid") and os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(PermissionError, match="locked"):
                fit(_NoBatchNorm(), loader, epochs=1, checkpoint_dir=locked, progress=False)
        finally:
            locked.chmod(0o700)


# ---------------------------------------------------------------------------------------------- progress output


def test_progress_prints_one_line_per_epoch_off_a_terminal(capsys):
    data = SyntheticShapes(n=4, size=16, num_classes=3, seed=0)
    fit(_NoBatchNorm(), DataLoader(data, batch_size=2), DataLoader(data, batch_size=4), epochs=2,
        precision="fp32")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and err[0].startswith("epoch 1/2") and err[1].startswith("epoch 2/2")
    assert "train_loss" in err[0] and "val_miou" in err[0] and "img/s" in err[0]
    fit(_NoBatchNorm(), DataLoader(data, batch_size=2), epochs=1, precision="fp32", progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


# ---------------------------------------------------------------------------------------------- logs


def _shapes_loader(n: int = 8) -> DataLoader:
    return DataLoader(SyntheticShapes(n=n, size=32, num_classes=3, seed=0), batch_size=2, shuffle=True)


def test_outside_a_terminal_fit_prints_progress_lines_with_speed_and_time_left(capsys, monkeypatch):
    from encdec.training import _progress

    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 0.0)
    model = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
    fit(model, _shapes_loader(), epochs=2, progress=True, precision="fp32", channels_last=False)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if " batch " in line]
    assert [line.split("  ")[:2] for line in lines] == [[f"epoch {e}/2", f"batch {b}/4"] for e in (1, 2)
                                                        for b in (1, 2, 3)]  # the last batch: the epoch line
    assert all(re.search(r"loss \d+\.\d{4}  \d+\.\d img/s  ETA \d+s$", line) for line in lines)
    assert sum(line.startswith("epoch ") and " batch " not in line for line in err.splitlines()) == 2

    monkeypatch.setattr(_progress, "PROGRESS_SECONDS", 3600.0)
    fit(model, _shapes_loader(), epochs=1, progress=True, precision="fp32", channels_last=False)
    assert " batch " not in capsys.readouterr().err


def test_tensorboard_gets_every_number_of_every_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = encdec.unet(num_classes=3, widths=(4, 8, 16, 32, 64))
    history = fit(model, _shapes_loader(), _shapes_loader(4), epochs=2, checkpoint_dir=tmp_path, progress=False,
                  precision="fp32", tensorboard=True)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    for key in ("train_loss", "val_miou", "lr"):
        logged = [(e.step, e.value) for e in events.Scalars(key)]
        assert [step for step, _ in logged] == [1, 2]
        assert [value for _, value in logged] == pytest.approx(history[key], rel=1e-6)
    with pytest.raises(ValueError, match="tensorboard=True writes into checkpoint_dir/tensorboard"):
        fit(model, _shapes_loader(), epochs=1, progress=False, tensorboard=True)


def test_fit_options_hold_exactly_fits_keyword_arguments_with_the_same_defaults():
    """FitOptions is what fit, resume and encdec train share: a field added to one must be added to the other."""
    import dataclasses
    import inspect

    from encdec.training import FitOptions

    params = inspect.signature(fit).parameters
    keywords = {n: p.default for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    fields = {f.name: f.default for f in dataclasses.fields(FitOptions)}
    assert keywords.keys() == fields.keys()
    assert {n: d for n, d in keywords.items() if d is not inspect.Parameter.empty} == {
        n: d for n, d in fields.items() if d is not dataclasses.MISSING}
