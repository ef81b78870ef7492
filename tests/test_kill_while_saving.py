"""Nothing lost: a writer SIGKILLed in the middle of saving leaves the old complete checkpoint or the new one.

``tests/scripts/kill_saver.py`` imports torch once and forks writers that rewrite one checkpoint in a loop,
cycling through three versions of ``custom_cnn`` (6.8 MB each). The test kills each writer with SIGKILL after a
random delay spread over a few writes, then checks the file: it must read, and every tensor must equal one of
the three versions (and its metadata must name that version). The only other files allowed are the killed
writers' ``.<name>.<random>.tmp`` leftovers, which nothing reads. A control run with plain, non-atomic writes
must produce torn files, which shows that the kills do land in the middle of writes.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import torch

import encdec
from encdec.weights import read_metadata

pytestmark = [pytest.mark.skipif(not hasattr(os, "fork"), reason="the writer server forks"),
              pytest.mark.slow]  # part of make test; make check leaves it out

SCRIPTS = Path(__file__).resolve().parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

from kill_saver import build_versions  # noqa: E402

VERSIONS = 3
KILLS = {".safetensors": 40, ".pth": 20}
CONTROL_KILLS = 15
SEED = int(os.environ.get("ENCDEC_KILL_SEED", "7"))


class Server:
    """The fork server: ``fork`` a writer, ``reap`` it after the kill."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.stderr = open(log, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPTS / "kill_saver.py"), str(VERSIONS)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True,
        )
        self.expect("ready")

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> str:
        reply = self.proc.stdout.readline().strip()
        if not reply:
            raise RuntimeError(f"the writer server died; its log:\n{self.log.read_text()[-3000:]}")
        return reply

    def expect(self, word: str) -> None:
        reply = self.read()
        if reply != word:
            raise RuntimeError(f"expected {word!r} from the writer server, got {reply!r}")

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        finally:
            self.stderr.close()


@pytest.fixture(scope="module")
def versions() -> List[Dict[str, torch.Tensor]]:
    return [m.state_dict() for m in build_versions(VERSIONS)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("server") / "server.log")
    yield s
    s.close()


def which_version(path: Path, versions: List[Dict[str, torch.Tensor]]) -> Optional[int]:
    """The version ``path`` holds completely, or ``None`` when it is unreadable, torn or a mixture."""
    try:
        state = encdec.read_state_dict(path)
    except encdec.WeightsError:
        return None
    for v, expected in enumerate(versions):
        if state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in expected):
            return v
    return None


def kill_writers(server: Server, target: Path, mode: str, kills: int, window: float, rng: random.Random,
                 versions: List[Dict[str, torch.Tensor]]) -> Dict[str, object]:
    found: List[Optional[int]] = []
    strays: List[str] = []
    mid_write = 0  # kills that left a temporary folder (the next write removes it: its writer is dead)
    for _ in range(kills):
        pid = int(server.ask(f"fork {mode} {target}").split()[1])
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        status = server.ask(f"reap {pid}")
        if status != f"signal {int(signal.SIGKILL)}":
            raise AssertionError(f"writer {pid} was not killed mid-loop ({status}); log:\n{server.log.read_text()}")
        v = which_version(target, versions)
        found.append(v)
        if v is not None and target.suffix == ".safetensors":
            assert read_metadata(target)["version"] == str(v)
        pattern = re.compile(rf"^\.({re.escape(target.name)}|config\.json)\..+\.tmp$")
        allowed = {target.name} | ({"config.json"} if mode == "pretrained" else set())
        strays = [p.name for p in target.parent.iterdir() if p.name not in allowed and not pattern.match(p.name)]
        assert not strays, f"unexpected files next to the checkpoint: {strays}"
        mid_write += any(p.name not in allowed for p in target.parent.iterdir())
        if mode == "pretrained" and (target.parent / "config.json").exists():
            config = json.loads((target.parent / "config.json").read_text())  # complete JSON, never torn
            assert config["architecture"] == "custom_cnn"
    leftovers = [p for p in target.parent.iterdir() if p.name not in allowed]
    return {"found": found, "leftovers": len(leftovers), "mid_write": mid_write}


def start_file(target: Path) -> float:
    """Write version 0 to ``target`` and return the time one write takes."""
    model = build_versions(1)[0]
    scratch = target.parent / "timing" / target.name
    start = time.perf_counter()
    for _ in range(3):
        encdec.save_weights(model, scratch)
    elapsed = (time.perf_counter() - start) / 3
    scratch.unlink()
    scratch.parent.rmdir()
    encdec.save_weights(model, target, version="0")
    return elapsed


@pytest.mark.parametrize("suffix", sorted(KILLS))
def test_killed_writer_leaves_a_complete_checkpoint(tmp_path, server, versions, suffix):
    folder = tmp_path / "run"
    folder.mkdir()
    target = folder / f"last{suffix}"
    window = 3 * start_file(target)  # kills spread over about three writes
    rng = random.Random(SEED)
    start = time.perf_counter()
    result = kill_writers(server, target, "atomic", KILLS[suffix], window, rng, versions)
    elapsed = time.perf_counter() - start
    found = result["found"]
    print(f"\n{suffix}: {len(found)} kills in {elapsed:.1f} s (window {window * 1000:.0f} ms); versions found "
          f"{[found.count(v) for v in range(VERSIONS)]}; {result['mid_write']} kills landed mid-write; "
          f"{result['leftovers']} temporary folders left at the end")
    assert len(found) == KILLS[suffix]
    assert None not in found, f"torn or unreadable checkpoint after kill {found.index(None) + 1}"
    assert len(set(found)) >= 2, "the writers never replaced the checkpoint: the kills came too early"
    assert result["mid_write"] >= 1, "no kill landed in the middle of a write"
    assert result["leftovers"] <= 1, "the folders of dead writers pile up: each write should remove them"


def test_killed_save_pretrained_leaves_a_complete_folder(tmp_path, server, versions):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    target = folder / "model.safetensors"
    window = 3 * start_file(target)
    rng = random.Random(SEED + 2)
    result = kill_writers(server, target, "pretrained", 20, window, rng, versions)
    found = result["found"]
    assert None not in found, f"torn or unreadable weights after kill {found.index(None) + 1}"
    assert result["mid_write"] >= 1, "no kill landed in the middle of a write"
    assert len(set(found)) >= 2, "the writers never replaced the weights: the kills came too early"
    assert result["leftovers"] <= 2, "the folders of dead writers pile up"  # one per file at most
    assert encdec.from_pretrained(folder).encdec_config["architecture"] == "custom_cnn"


def test_kill_counts_meet_the_issue():
    assert sum(KILLS.values()) >= 50


def test_control_direct_writes_are_torn(tmp_path, server, versions):
    """The same kills on non-atomic writes (save_file straight onto the target) do leave broken files."""
    target = tmp_path / "direct.safetensors"
    window = 3 * start_file(target)
    rng = random.Random(SEED + 1)
    result = kill_writers(server, target, "direct", CONTROL_KILLS, window, rng, versions)
    torn = result["found"].count(None)
    print(f"\ncontrol: {torn} of {CONTROL_KILLS} direct writes left a torn file")
    assert torn >= 1


def test_atomic_write_keeps_permissions(tmp_path):
    target = tmp_path / "w.safetensors"
    model = encdec.custom_cnn(num_classes=2)
    encdec.save_weights(model, target)
    old_umask = os.umask(0o022)
    os.umask(old_umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~old_umask  # not mkstemp's 0o600
    os.chmod(target, 0o640)
    encdec.save_weights(model, target)
    assert target.stat().st_mode & 0o777 == 0o640


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "w.txt"
    target.write_text("old")

    def failing(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        encdec.atomic.atomic_write(target, failing)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.txt"]
