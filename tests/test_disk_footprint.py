"""The test suite's own footprint: a passing run leaves no checkpoints behind, and examples write under pytest's folder.

Recipe runs and doc blocks write checkpoints of hundreds of MB; kept for every test, one run of the suite wrote
about 25 GB to the temporary folder and a machine's disk filled up after a few runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


def test_a_passing_tests_folder_is_removed(request):
    assert request.config.getini("tmp_path_retention_policy") == "failed"
    assert int(request.config.getini("tmp_path_retention_count")) <= 3


def test_examples_mkdtemp_lands_inside_pytests_own_folder(tmp_path_factory):
    made = Path(tempfile.mkdtemp())
    assert tmp_path_factory.getbasetemp() in made.parents


def test_the_install_keeps_no_wheel_cache():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    installs = [row for row in makefile.splitlines() if "pip install" in row]
    assert installs and all("--no-cache-dir" in row for row in installs)
