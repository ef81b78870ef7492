"""``encdec.atomic``: one atomic-write helper for paths and handles, which cleans up after dead writers."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from encdec import atomic


def test_path_and_handle_writers_give_the_same_file(tmp_path):
    atomic.atomic_write(tmp_path / "a.bin", lambda handle: handle.write(b"abc"), handle=True)
    atomic.atomic_write(tmp_path / "b.bin", lambda path: open(path, "wb").write(b"abc"))
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes() == b"abc"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


def test_permission_bits_of_the_replaced_file_are_kept(tmp_path):
    target = tmp_path / "x.json"
    target.write_text("{}")
    os.chmod(target, 0o640)
    atomic.atomic_write_json({"a": 1}, target)
    assert oct(target.stat().st_mode & 0o777) == oct(0o640)


def test_temporary_folders_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    host = atomic._HOST  # the host part of the names this machine writes
    stale = tmp_path / f".m.pt.{host}-{pid}.abcd1234.tmp"
    alive = tmp_path / f".m.pt.{host}-{os.getppid()}.efgh5678.tmp"  # a live process: not touched
    other_host = tmp_path / f".m.pt.elsewhere-{pid}.ijkl9012.tmp"  # another machine's writer: not touched
    unrelated = tmp_path / f".n.pt.{host}-{pid}.mnop3456.tmp"  # another file's writer: left to its own writes
    for folder in (stale, alive, other_host, unrelated):
        folder.mkdir()
        (folder / "m.pt").write_bytes(b"half")
    atomic.atomic_write_text("new", tmp_path / "m.pt")
    assert not stale.exists()
    assert alive.exists() and other_host.exists() and unrelated.exists()
    assert (tmp_path / "m.pt").read_text() == "new"


def test_a_failed_write_names_the_file_and_the_cause_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "w.txt"
    target.write_text("old")

    def no_space(path):
        open(path, "w").write("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"cannot write .*w\.txt: No space left on device; the previous file there is "
                                      r"untouched") as error:
        atomic.atomic_write(target, no_space)
    assert error.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["w.txt"]


def test_an_unwritable_directory_is_named_before_work_starts(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match="checkpoint_dir=.*file/run.*not a writable directory"):
        atomic.ensure_writable_dir(blocker / "run", option="checkpoint_dir")


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs (needs root and mount; skipped elsewhere)."""
    folder = tmp_path / "full"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)  # lazy: detached even while a handle is open


def test_a_full_disk_is_named_and_the_previous_file_kept(full_disk):
    import torch

    import encdec

    model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))  # 1.9 MB of weights, the disk holds 1 MiB
    previous = full_disk / "m.pth"
    previous.write_bytes(b"old")
    for name in ("m.pth", "m.safetensors"):
        with pytest.raises(OSError, match=rf"cannot write .*{name}: No space left on device") as error:
            encdec.save_weights(model, full_disk / name)
        assert error.value.errno == errno.ENOSPC
    assert previous.read_bytes() == b"old"
    loader = torch.utils.data.DataLoader(encdec.SyntheticShapes(n=4, size=32), batch_size=4)
    with pytest.raises(OSError, match=r"cannot write .*last\.pt: No space left on device"):
        encdec.fit(model, loader, epochs=1, checkpoint_dir=full_disk / "run", progress=False, precision="fp32")
    assert sorted(p.name for p in full_disk.iterdir()) == ["m.pth", "run"]
