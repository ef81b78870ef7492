"""Well-formed but wrong files are refused, bad training input gets a clear error, nothing non-finite is scored."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

import encdec
from encdec.batches import NonFiniteError
from encdec.cli import main
from encdec.weights import WeightsError, read_state_dict

TINY = (4, 8, 16, 32, 64)


# ---------------------------------------------------------------------------------------------- bit rot


def _member_offsets(path, members):
    """(start, end) of the bytes of each named zip member in the file."""
    spans = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.filename in members:
                with open(path, "rb") as f:
                    f.seek(info.header_offset + 26)
                    name_len, extra_len = np.frombuffer(f.read(4), "<u2")
                start = info.header_offset + 30 + int(name_len) + int(extra_len)
                spans.append((start, start + info.compress_size))
    return spans


def _tensor_members(path):
    with zipfile.ZipFile(path) as z:
        return [i.filename for i in z.infolist() if "/data/" in i.filename and i.file_size]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".pth", ".pt"])
def test_every_bit_flip_in_tensor_bytes_of_a_torch_file_is_refused(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    torch.save(encdec.custom_cnn(num_classes=3).state_dict(), path)
    data = path.read_bytes()
    spans = _member_offsets(path, _tensor_members(path))
    rng = np.random.default_rng(0)
    flipped = tmp_path / f"flipped{suffix}"
    for _ in range(60):
        start, end = spans[int(rng.integers(len(spans)))]
        offset, bit = int(rng.integers(start, end)), int(rng.integers(8))
        damaged = bytearray(data)
        damaged[offset] ^= 1 << bit
        flipped.write_bytes(damaged)
        with pytest.raises(WeightsError, match="does not match its CRC-32"):
            read_state_dict(flipped)


@pytest.mark.slow
def test_every_bit_flip_in_tensor_bytes_of_an_encdec_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "model.safetensors"
    encdec.save_weights(encdec.custom_cnn(num_classes=3), path)
    data = path.read_bytes()
    header = 8 + int.from_bytes(data[:8], "little")
    rng = np.random.default_rng(1)
    flipped = tmp_path / "flipped.safetensors"
    for _ in range(60):
        damaged = bytearray(data)
        damaged[int(rng.integers(header, len(data)))] ^= 1 << int(rng.integers(8))
        flipped.write_bytes(damaged)
        with pytest.raises(WeightsError, match="does not match the checksum recorded"):
            read_state_dict(flipped)


def test_a_bit_flip_in_a_fit_checkpoint_is_refused(tmp_path):
    model = encdec.unet(num_classes=3, widths=TINY)
    loader = DataLoader(encdec.SyntheticShapes(n=8, size=32), batch_size=4)
    encdec.fit(model, loader, epochs=1, checkpoint_dir=tmp_path / "run", progress=False, precision="fp32")
    last = tmp_path / "run" / "last.pt"
    start, end = _member_offsets(last, _tensor_members(last)[:1])[0]
    damaged = bytearray(last.read_bytes())
    damaged[(start + end) // 2] ^= 0x10
    last.write_bytes(damaged)
    with pytest.raises(WeightsError, match="CRC-32"):
        encdec.training.state.load_checkpoint(last)


# ---------------------------------------------------------------------------------------------- bombs and odd files


def _run_capped(code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with a 256 MiB address-space cap on top of what importing torch takes."""
    wrapper = (
        "import resource, torch, encdec\n"
        "with open('/proc/self/statm') as f: used = int(f.read().split()[0]) * 4096\n"
        "resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, resource.RLIM_INFINITY))\n" + code
    )
    return subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_a_deflate_bomb_is_refused_before_inflating(tmp_path):
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.", compress_type=zipfile.ZIP_STORED)
        with z.open("archive/data/0", "w", force_zip64=True) as member:
            for _ in range(64):
                member.write(bytes(8 * 2**20))
    assert path.stat().st_size < 3 * 2**20  # inflating it would take 512 MiB, twice the cap
    done = _run_capped(f"from encdec.weights import read_state_dict, WeightsError\n"
                       f"try:\n    read_state_dict({str(path)!r})\nexcept WeightsError as e:\n    print(e)\n", 120)
    assert done.returncode == 0, done.stderr[-1000:]
    assert "is compressed" in done.stdout and "refused before allocating" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_odd_filesystem_objects_are_named_and_never_block(tmp_path):
    fifo = tmp_path / "x.pth"
    os.mkfifo(fifo)
    (tmp_path / "loop.pth").symlink_to(tmp_path / "loop.pth")
    (tmp_path / "broken.pth").symlink_to(tmp_path / "missing.pth")
    (tmp_path / "zero.pth").symlink_to("/dev/zero")
    cases = {"x.pth": "a named pipe (FIFO)", "loop.pth": "a symbolic link loop", "broken.pth": "a broken symbolic link",
             "zero.pth": "a device", ".": "a directory"}
    code = ("import encdec\nfrom encdec.weights import WeightsError\n"
            f"for name in {list(cases)!r}:\n"
            f"    for load in (encdec.read_state_dict, lambda p: encdec.load_weights(encdec.custom_cnn(), p)):\n"
            f"        try:\n            load({str(tmp_path)!r} + '/' + name)\n"
            f"        except WeightsError as e:\n            print(name, '|', e)\n")
    done = _run_capped(code, timeout=120)  # a FIFO that blocks would hit the timeout and fail the test
    assert done.returncode == 0, done.stderr[-1000:]
    lines = done.stdout.splitlines()
    for name, kind in cases.items():
        said = [line for line in lines if line.startswith(name + " |")]
        assert len(said) == 2 and all(f"is {kind}" in line for line in said), (name, said)


_SWAP_SCRIPT = r"""
import os, sys, warnings
import numpy as np
import torch
import encdec
import encdec.pretrained as pretrained
import encdec.weights.formats as formats
from encdec._files import NotARegularFileError

folder = sys.argv[1]
fifo = os.path.join(folder, "pipe")


def swap(path):
    os.mkfifo(fifo)
    os.replace(fifo, path)  # the name now leads to a FIFO that nobody writes: a blocking open would wait forever


def after(real):
    def hooked(path, *args, **kwargs):
        handle = real(path, *args, **kwargs)
        swap(path)
        return handle
    return hooked


def before(real):
    def hooked(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        swap(path)
        return result
    return hooked


model = encdec.custom_cnn(num_classes=3)
files = {"zip": "m.pth", "legacy": "legacy.pth", "safetensors": "m.safetensors", "safetensors named .bin": "s.bin"}
for label, name in files.items():
    for when in ("between the open and the read", "between the check and the open"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            os.unlink(path)
        if label.startswith("safetensors"):
            encdec.save_weights(model, path if name.endswith(".safetensors") else path + ".safetensors")
            if not name.endswith(".safetensors"):
                os.replace(path + ".safetensors", path)
        else:
            torch.save(model.state_dict(), path, _use_new_zipfile_serialization=label == "zip")
        real_open, real_check = formats.open_regular_file, formats.check_regular_file
        if when.startswith("between the open"):
            formats.open_regular_file = after(real_open)
        else:
            formats.check_regular_file = before(real_check)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                encdec.load_weights(encdec.custom_cnn(num_classes=3), path)
            print(f"{label} | {when} | loaded")
        except encdec.WeightsError as e:
            print(f"{label} | {when} | error: {e}")
        finally:
            formats.open_regular_file, formats.check_regular_file = real_open, real_check

run = os.path.join(folder, "run")
encdec.save_pretrained(model, run)
real_read = pretrained.read_regular_file
pretrained.read_regular_file = lambda path, *a, **k: (swap(path), real_read(path, *a, **k))[1]
try:
    encdec.from_pretrained(run)
    print("config | swapped | loaded")
except encdec.WeightsError as e:
    print(f"config | swapped | error: {e}")
pretrained.read_regular_file = real_read

image = os.path.join(folder, "x.png")
os.mkfifo(image)
try:
    encdec.predict(encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)), image)
except OSError as e:
    print(f"image | FIFO | {type(e).__name__}: {e}")
"""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_path_swapped_for_a_fifo_while_loading_never_blocks(tmp_path):
    """Every file is opened once, without blocking, and read through that handle: a hook that replaces the path
    with a FIFO right after the open changes nothing (the handle holds the file), and one that replaces it between
    the regular-file check and the open is refused by name. A blocking open would hang: the subprocess has a
    timeout."""
    done = subprocess.run([sys.executable, "-c", _SWAP_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.rsplit(" | ", 1) for line in done.stdout.splitlines())
    for label in ("zip", "legacy", "safetensors", "safetensors named .bin"):
        assert lines[f"{label} | between the open and the read"] == "loaded"
        refused = lines[f"{label} | between the check and the open"]
        assert refused.startswith("error: ") and "is a named pipe (FIFO), not a checkpoint file" in refused, refused
    assert "config.json: cannot be read" in lines["config | swapped"]
    assert "is a named pipe (FIFO), not a config file" in lines["config | swapped"]
    assert lines["image | FIFO"].endswith("x.png: is a named pipe (FIFO), not an image file")


def test_the_command_line_names_odd_files_the_same_way(tmp_path, capsys):
    os.mkfifo(tmp_path / "x.pth")
    code = main(["convert", str(tmp_path / "x.pth"), str(tmp_path / "o.safetensors"), "--model", "unet"])
    assert code == 1 and "is a named pipe (FIFO), not a checkpoint file" in capsys.readouterr().err
    code = main(["eval", "--weights", str(tmp_path / "x.pth"), "--data", "shapes:4", "--model", "unet"])
    assert code == 1 and "is a named pipe (FIFO)" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- impossible values


def test_impossible_batchnorm_statistics_are_refused(tmp_path):
    state = encdec.custom_cnn().state_dict()
    state["features.2.1.running_var"][3] = -0.5
    with pytest.raises(WeightsError, match="BatchNorm running variance, which is never negative: "
                                           "features.2.1.running_var"):
        encdec.load_state_dict(encdec.custom_cnn(), state)
    state = encdec.custom_cnn().state_dict()
    state["features.0.1.num_batches_tracked"] = torch.tensor(1.5)
    with pytest.raises(WeightsError, match="non-negative whole number: features.0.1.num_batches_tracked"):
        encdec.load_state_dict(encdec.custom_cnn(), state)


# ---------------------------------------------------------------------------------------------- the batch contract


def _segmentation_loader(masks, images=None, batch_size=2):
    images = torch.randn(len(masks), 3, 32, 32) if images is None else images
    return DataLoader(TensorDataset(images, masks), batch_size=batch_size)


@pytest.mark.parametrize("bad, shown", [(300, r"\[300\]"), (-1, r"\[-1\]"), (3, r"\[3\]")])
def test_labels_outside_the_model_are_named_before_the_loss(bad, shown):
    masks = torch.zeros(4, 32, 32, dtype=torch.long)
    masks[1, 5, 5] = bad
    model = encdec.unet(num_classes=3, widths=TINY)
    for run in (lambda loader: encdec.fit(model, loader, epochs=1, progress=False),
                lambda loader: encdec.evaluate(model, loader)):
        with pytest.raises(ValueError, match=rf"batch 1.*target values {shown} are not classes of this 3-output "
                                             r"model; valid labels are 0\.\.2 \((no ignore label|or -100, which cross "
                                             r"entropy skips)\)"):
            run(_segmentation_loader(masks))


@pytest.mark.parametrize("dtype", [torch.int32, torch.uint8, torch.bool, torch.int16])
def test_integer_masks_of_any_width_and_n1hw_masks_are_accepted(dtype):
    masks = (torch.rand(4, 1, 32, 32) > 0.5).to(dtype)
    model = encdec.unet(num_classes=2, widths=TINY)
    history = encdec.fit(model, _segmentation_loader(masks), epochs=1, progress=False, precision="fp32")
    assert np.isfinite(history["train_loss"][0])


def test_float_masks_float64_images_and_mismatched_batches():
    model = encdec.unet(num_classes=2, widths=TINY)
    with pytest.raises(TypeError, match="targets are torch.float32; targets are class indices"):
        encdec.fit(model, _segmentation_loader(torch.zeros(4, 32, 32)), epochs=1, progress=False)
    scores = encdec.evaluate(model, _segmentation_loader(torch.zeros(4, 32, 32, dtype=torch.long),
                                                         torch.randn(4, 3, 32, 32, dtype=torch.float64)))
    assert 0.0 <= scores["pixel_accuracy"] <= 1.0
    bad = [(torch.randn(2, 3, 32, 32), torch.zeros(3, 32, 32, dtype=torch.long))]
    with pytest.raises(ValueError, match="2 images but 3 targets"):
        encdec.evaluate(model, bad)
    with pytest.raises(TypeError, match="images are torch.uint8.*x.float\\(\\) / 255"):
        encdec.evaluate(model, [(torch.zeros(2, 3, 32, 32, dtype=torch.uint8), torch.zeros(2, 32, 32).long())])


class _Wrapped(nn.Module):
    def __init__(self, form):
        super().__init__()
        self.net, self.form = encdec.unet(num_classes=3, widths=TINY), form

    def forward(self, x):
        out = self.net(x)
        return {"dict": {"out": out, "aux": out}, "tuple": (out, out), "set": {1}}[self.form]


def test_models_returning_dicts_or_tuples_are_accepted_and_others_named():
    loader = _segmentation_loader(torch.zeros(4, 32, 32, dtype=torch.long))
    for form in ("dict", "tuple"):
        assert "miou" in encdec.evaluate(_Wrapped(form), loader)
        assert encdec.predict(_Wrapped(form), torch.randn(1, 3, 32, 32)).shape == (1, 32, 32)
    with pytest.raises(TypeError, match="the model returned a set; expected logits"):
        encdec.fit(_Wrapped("set"), loader, epochs=1, progress=False)


class _Items(Dataset):
    def __init__(self, form):
        self.form = form

    def __len__(self):
        return 4

    def __getitem__(self, i):
        image, mask = torch.randn(3, 32, 32), torch.zeros(32, 32, dtype=torch.long)
        return {"dict": {"image": image, "mask": mask}, "triple": (image, mask, i)}[self.form]


def test_datasets_yielding_dicts_are_accepted_and_three_tuples_named():
    model = encdec.unet(num_classes=3, widths=TINY)
    assert "miou" in encdec.evaluate(model, DataLoader(_Items("dict"), batch_size=2))
    with pytest.raises(TypeError, match=r"training batch 1 of epoch 1 is a list of 3 items.*\(images, targets\)"):
        encdec.fit(model, DataLoader(_Items("triple"), batch_size=2), epochs=1, progress=False)


# ---------------------------------------------------------------------------------------------- never scored


def test_non_finite_outputs_are_never_scored():
    logits = torch.randn(1, 3, 4, 4)
    logits[0, :, 1, 1] = float("nan")
    metric = encdec.SegmentationMetrics(3)
    with pytest.raises(NonFiniteError, match="metrics: the model's outputs hold 3 NaN or infinite values out of 48"):
        metric.update(logits, torch.zeros(1, 4, 4, dtype=torch.long))
    model = encdec.unet(num_classes=3, widths=TINY)
    images = torch.randn(4, 3, 32, 32)
    images[2, 0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="evaluation batch 2"):
        encdec.evaluate(model, _segmentation_loader(torch.zeros(4, 32, 32, dtype=torch.long), images))
    with pytest.raises(NonFiniteError, match="predict, images 3-3"):
        encdec.predict(model, images, batch_size=1)


def test_empty_loaders_are_refused():
    model = encdec.unet(num_classes=3, widths=TINY)
    empty = _segmentation_loader(torch.zeros(0, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match="training loader yielded no batches"):
        encdec.fit(model, empty, epochs=1, progress=False)
    good = _segmentation_loader(torch.zeros(2, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match="validation loader yielded no batches"):
        encdec.fit(model, good, empty, epochs=1, progress=False)
    with pytest.raises(ValueError, match="evaluation loader yielded no batches"):
        encdec.evaluate(model, empty)


# ---------------------------------------------------------------------------------------------- Ctrl-C


class _Interrupting(Dataset):
    """Interrupts (as Ctrl-C does) on the first item of the second epoch."""

    def __init__(self):
        self.served = 0

    def __len__(self):
        return 4

    def __getitem__(self, i):
        self.served += 1
        if self.served == 5:
            raise KeyboardInterrupt
        return torch.randn(3, 32, 32), torch.zeros(32, 32, dtype=torch.long)


def test_ctrl_c_in_fit_names_the_checkpoint_to_resume_from(tmp_path, capsys):
    model = encdec.unet(num_classes=3, widths=TINY)
    with pytest.raises(KeyboardInterrupt):
        encdec.fit(model, DataLoader(_Interrupting(), batch_size=2), epochs=3, checkpoint_dir=tmp_path,
                   progress=False, precision="fp32", channels_last=False)
    err = capsys.readouterr().err
    assert f"interrupted during epoch 2; resume from {tmp_path / 'last.pt'} (after epoch 1)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "best.safetensors", "history.json", "last.pt",
                                                          "metrics.csv"]
    encdec.training.state.load_checkpoint(tmp_path / "last.pt")  # complete and readable


def test_targets_that_do_not_match_the_logits_are_named():
    model = encdec.unet(num_classes=3, widths=TINY)
    loader = _segmentation_loader(torch.zeros(4, 16, 16, dtype=torch.long))  # masks of another size
    with pytest.raises(ValueError, match=r"targets of shape \(2, 16, 16\) for logits of shape \(2, 3, 32, 32\)"):
        encdec.fit(model, loader, epochs=1, progress=False)
    classifier = encdec.custom_cnn(num_classes=4)
    column = DataLoader(TensorDataset(torch.randn(4, 3, 32, 32), torch.tensor([[0], [1], [2], [3]])), batch_size=2)
    assert "accuracy" in encdec.evaluate(classifier, column)  # an (N, 1) column of labels is flattened
