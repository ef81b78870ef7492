"""``make test`` passes on a machine without Chromium: the browser tests of the docs are skipped, never failed.

The docs tests are run in a child pytest whose PATH holds no folder with a Chromium in it, so the result does not
depend on whether this machine has one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("chromium", "chromium-browser", "google-chrome")

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")


def _path_without_chromium() -> str:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [f for f in folders if f and not any(os.access(os.path.join(f, n), os.X_OK) for n in NAMES)]
    return os.pathsep.join(kept)


def test_browser_tests_skip_when_chromium_is_not_on_path(tmp_path):
    path = _path_without_chromium()
    assert all(shutil.which(n, path=path) is None for n in NAMES)
    report = tmp_path / "report.xml"
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_docs.py", "-m", "browser", "-p", "no:cacheprovider", "-q", "-rs",
         f"--junitxml={report}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    cases = suite.findall("testcase")
    assert cases, f"no browser test was collected:\n{output[-3000:]}"
    for case in cases:
        outcome = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        assert outcome == ["skipped"], (case.get("name"), outcome, output[-3000:])
        assert "Chromium is not installed" in case.find("skipped").get("message", ""), case.get("name")
