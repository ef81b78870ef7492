"""Inputs a user or an attacker can hand encdec that once ended in raw errors: full disks on safetensors saves,
long and NUL-carrying names, mistyped options and impossible training counters. Each gets a named error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch.utils.data import DataLoader

import encdec
from encdec.atomic import atomic_save
from encdec.training.state import LAST, load_checkpoint
from encdec.weights import read_metadata

TINY = (4, 8, 16, 32, 64)

_FULL_DISK = r"""
import json, os, resource, signal, sys
import torch
import encdec
path = sys.argv[1]
encdec.save_weights(torch.nn.Linear(2, 2), path)
old = {k: v.clone() for k, v in encdec.read_state_dict(path).items()}
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as a full disk fails
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
try:
    encdec.save_weights(torch.nn.Linear(200, 200), path)
    print(json.dumps({"raised": None}))
except BaseException as e:
    now = encdec.read_state_dict(path)
    same = now.keys() == old.keys() and all(torch.equal(now[k], old[k]) for k in old)
    print(json.dumps({"raised": type(e).__name__, "oserror": isinstance(e, OSError), "message": str(e),
                      "kept": same, "files": sorted(os.listdir(os.path.dirname(path)))}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses RLIMIT_FSIZE")
def test_a_failed_safetensors_write_is_an_oserror_and_keeps_the_previous_file(tmp_path):
    path = tmp_path / "m.safetensors"
    done = subprocess.run([sys.executable, "-c", _FULL_DISK, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["oserror"], result  # not safetensors' own SafetensorError
    assert f"cannot write {path}" in result["message"] and "File too large" in result["message"]
    assert "the previous file there is untouched" in result["message"]
    assert result["kept"] and result["files"] == ["m.safetensors"]


def test_a_file_name_of_240_bytes_can_be_saved_and_read(tmp_path):
    for name in ["a" * 228 + ".safetensors", "é" * 116 + ".pth"]:
        assert len(os.fsencode(name)) >= 236
        path = encdec.save_weights(encdec.custom_cnn(), tmp_path / name)
        assert path.name == name
        encdec.load_weights(encdec.custom_cnn(), path)
        encdec.save_weights(encdec.custom_cnn(), tmp_path / name)  # replacing it works too
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a" * 228 + ".safetensors", "é" * 116 + ".pth"])


def test_a_nul_in_a_path_is_a_named_error(tmp_path):
    bad = str(tmp_path / "x\0y.safetensors")
    with pytest.raises(encdec.WeightsError, match="a path cannot contain a NUL character"):
        encdec.load_weights(encdec.custom_cnn(), bad)
    with pytest.raises(encdec.WeightsError, match="a path cannot contain a NUL character"):
        read_metadata(bad)
    with pytest.raises(encdec.WeightsError, match="NUL"):
        encdec.from_pretrained(bad)
    with pytest.raises(OSError, match="cannot write .* a path cannot contain a NUL character"):
        encdec.save_weights(encdec.custom_cnn(), bad)
    with pytest.raises(OSError, match="a path cannot contain a NUL character"):
        encdec.predict(encdec.unet(num_classes=2, widths=TINY), str(tmp_path / "a\0.png"))


@pytest.mark.parametrize("overlap, error", [("0.5", TypeError), (None, TypeError), (True, TypeError),
                                            (1.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError)])
def test_overlap_of_the_wrong_type_or_range_is_named(overlap, error):
    model = encdec.unet(num_classes=2, widths=TINY)
    with pytest.raises(error, match=r"overlap must be a fraction in \[0, 1\)"):
        encdec.predict(model, torch.rand(3, 32, 32), overlap=overlap)
    with pytest.raises(error, match=r"overlap must be a fraction in \[0, 1\)"):
        encdec.predict(model, torch.rand(3, 32, 32), tile=16, overlap=overlap)


@pytest.fixture(scope="module")
def one_epoch_run(tmp_path_factory):
    loader = DataLoader(encdec.SyntheticShapes(n=4, size=32), batch_size=4)
    torch.manual_seed(0)
    model = encdec.unet(num_classes=3, widths=TINY)
    folder = tmp_path_factory.mktemp("run")
    encdec.fit(model, loader, epochs=1, checkpoint_dir=folder, progress=False)
    return model, loader, folder


@pytest.mark.parametrize("edit, problem", [
    ({"epoch": -5}, "its epoch is -5, not a non-negative whole number"),
    ({"epoch": 1.5}, "its epoch is 1.5"),
    ({"epoch": True}, "its epoch is True"),
    ({"global_step": -1}, "its global_step is -1"),
    ({"bad_epochs": 3}, r"its bad_epochs \(3\) exceeds its epoch \(1\)"),
    ({"epoch": 4}, "its history holds 1 epoch records for epoch 4"),
    ({"history": {"epochs": "x"}}, "its history holds no list of epoch records"),
])
def test_a_checkpoint_with_impossible_counters_is_refused_on_resume(one_epoch_run, tmp_path, edit, problem):
    model, loader, folder = one_epoch_run
    state = load_checkpoint(folder / LAST)
    state.update(edit)
    atomic_save(state, tmp_path / LAST)
    with pytest.raises(ValueError, match=f"cannot resume from .*{LAST}: {problem}"):
        encdec.fit(model, loader, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False)


def test_a_valid_checkpoint_still_resumes(one_epoch_run, tmp_path):
    model, loader, folder = one_epoch_run
    atomic_save(load_checkpoint(folder / LAST), tmp_path / LAST)
    assert len(encdec.fit(model, loader, epochs=2, checkpoint_dir=tmp_path, resume=True, progress=False)) == 2


# ---------------------------------------------------------------------------------------------- recorded architecture


def test_a_file_recording_another_architecture_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = encdec.unet(num_classes=2, widths=TINY)
    path = tmp_path / "other.safetensors"
    save_file(model.state_dict(), str(path), metadata={"architecture": "resnet34_unet", "kwargs": "{}"})
    message = "records architecture 'resnet34_unet', but the model is 'unet'"
    with pytest.raises(encdec.WeightsError, match=message):
        encdec.load_weights(encdec.unet(num_classes=2, widths=TINY), path)
    with pytest.raises(encdec.WeightsError, match=message):
        encdec.unet(num_classes=2, widths=TINY, weights=str(path))
    save_file(model.state_dict(), str(path), metadata={"architecture": "unet"})
    assert encdec.load_weights(encdec.unet(num_classes=2, widths=TINY), path).complete


# ---------------------------------------------------------------------------------------------- hostile run folders


def _run_folder(tmp_path, **changes):
    folder = encdec.save_pretrained(encdec.custom_cnn(num_classes=3), tmp_path / "run", class_names=["a", "b", "c"])
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if key.startswith("kwargs."):
            config["kwargs"][key[len("kwargs."):]] = value
        elif key.startswith("preprocessing."):
            config.setdefault("preprocessing", {})[key[len("preprocessing."):]] = value
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("changes, problem", [
    ({"preprocessing.size": [200000, 200000]}, r"'preprocessing.size' must be one or two whole "
                                               "numbers from 1 to 16384"),
    ({"preprocessing.size": "64"}, r"'preprocessing.size' must be"),
    ({"preprocessing.resize": "zoom"}, r"'preprocessing.resize' must be one of"),
    ({"std": [0.2, 0, 0.2]}, r"'std' must be positive numbers"),
    ({"std": [float("nan")] * 3}, r"'std' must be a list of 1 to 4 finite numbers"),
    ({"mean": [float("inf"), 0, 0]}, r"'mean' must be a list of 1 to 4 finite numbers"),
    ({"mean": "abc"}, r"'mean' must be a list of 1 to 4 finite numbers .* got 'abc'"),
    ({"mean": [0.5, 0.5], "std": [0.2] * 3}, r"'std' must be as long as 'mean'"),
    ({"class_names": "cat"}, r"'class_names' must be a list of strings, one per class, got 'cat'"),
    ({"class_names": ["a", 2, "c"]}, r"'class_names' must be a list of strings"),
    ({"class_names": ["a", "b"]}, r"'class_names' lists 2 names for a model with 3 outputs"),
    ({"kwargs": [1]}, r"'kwargs' is a list"),
])
def test_a_hostile_config_json_is_refused_by_name(tmp_path, changes, problem):
    folder = _run_folder(tmp_path, **changes)
    with pytest.raises(encdec.WeightsError, match=f"config.json: .*{problem}"):
        encdec.from_pretrained(folder)


def test_a_config_never_makes_encdec_open_another_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET-CONTENTS\n")
    folder = _run_folder(tmp_path, **{"kwargs.weights": str(secret), "kwargs.encoder_weights": str(secret)})
    model = encdec.from_pretrained(folder)  # the arguments are left out: the folder's own weights are loaded
    assert model.num_classes == 3
    folder = _run_folder(tmp_path, **{"kwargs.weights": str(secret), "kwargs.num_classes": "x"})
    with pytest.raises(encdec.WeightsError) as info:
        encdec.from_pretrained(folder)
    assert "SECRET" not in str(info.value) and "root:x" not in str(info.value)
