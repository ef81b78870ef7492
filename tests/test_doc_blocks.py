"""The Python blocks of README.md and docs/ are collected and run by ``make test`` (pytest-markdown-docs, set up in
conftest.py): every block is collected unless marked ``notest``, and every ``notest`` block's page says how to try it
on a stand-in."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_markdown_docs", reason="the test extra is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\{[^}\n]*\}|[\w+-]+)[^\n]*\n", re.M)


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _python_fences(page: Path):
    out = []
    for match in FENCE.finditer(page.read_text(encoding="utf-8")):
        info = match.group(1)
        lang = re.search(r"\.?(\w+)", info.strip("{}")).group(1)
        if lang in ("python", "py", "python3"):
            out.append(info)
    return out


def test_every_python_block_is_collected_unless_marked_notest():
    done = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "README.md", "docs"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    collected = {}
    for line in done.stdout.splitlines():
        if "::[CodeFence#" in line:
            page = line.split("::")[0]
            collected[page] = collected.get(page, 0) + 1
    expected = {}
    for page in _pages():
        runnable = [f for f in _python_fences(page) if "notest" not in f]
        if runnable:
            expected[str(page.relative_to(ROOT))] = len(runnable)
    assert collected == expected, done.stdout[-3000:] + done.stderr[-3000:]
    assert sum(expected.values()) >= 20


def test_blocks_that_name_user_files_get_stand_ins_and_notest_blocks_say_how_to_try_them():
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from fixtures import stand_ins
    finally:
        sys.path.remove(str(ROOT / "tests"))
    for page in _pages():
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(r"^```(\{\.python[^}\n]*\}|python)[^\n]*\n(.*?)^```", text, flags=re.M | re.S):
            info, code = match.group(1), match.group(2)
            if "notest" in info:
                assert "stand_ins.py" in text, f"{page.name}: a notest block without a way to try it"
            elif stand_ins.names_in(code) and "docs/models/resnet50_unet.md" not in str(page):
                assert "fixture:stand_ins" in info, f"{page.name}: a block reads {stand_ins.names_in(code)}"
