"""Shared pytest set-up: docstring examples may use ``torch`` without importing it; parallel workers
(``pytest -n 2``) get one intra-op thread each, so two workers do not fight over the same cores.

pytest also collects the Python code blocks of README.md and docs/ (pytest-markdown-docs) and runs each as written.

Each block runs in an empty temporary folder. A block that reads files a user would have (a reference checkpoint,
a dataset folder) names the fixture ``stand_ins`` in its fence, `` ```{.python fixture:stand_ins} ``: the files
and folders it names are written there first, with random weights and a few generated images
(``tests/fixtures/stand_ins.py``, which also makes them from the command line). A block marked
`` ```{.python notest} `` is shown but not run: it needs hours, GPUs or files no stand-in replaces.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent
collect_ignore = ["docs/_hooks"]

try:
    from pytest_markdown_docs.plugin import MarkdownInlinePythonItem, MarkdownTextFile
except ImportError:  # the test extra is not installed: the doc blocks are not collected
    MarkdownInlinePythonItem = MarkdownTextFile = None


def _stand_ins():
    spec = importlib.util.spec_from_file_location("encdec_doc_stand_ins", ROOT / "tests" / "fixtures" / "stand_ins.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pytest_configure(config):
    if MarkdownTextFile is not None:
        config.option.markdowndocs_syntax = "superfences"  # the fence syntax Material for MkDocs renders


def pytest_collect_file(file_path, parent):
    """README.md and docs/**.md, without ``--markdown-docs`` (which would also read every .py file's docstrings)."""
    if MarkdownTextFile is None or file_path.suffix != ".md" or parent.config.option.markdowndocs:
        return None
    path = Path(file_path).resolve()
    if path == ROOT / "README.md" or (ROOT / "docs") in path.parents:
        return MarkdownTextFile.from_parent(parent, path=file_path)
    return None


#: Blocks of pages being rewritten elsewhere that do not run yet: still collected, reported as xfail.
KNOWN_FAILING: dict = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if MarkdownInlinePythonItem is not None and isinstance(item, MarkdownInlinePythonItem):
            item.add_marker(pytest.mark.slow)  # trains and writes checkpoints: make test, not make check
            for prefix, reason in KNOWN_FAILING.items():
                if item.nodeid.startswith(prefix):
                    item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


@pytest.fixture(autouse=True)
def _doc_block_in_empty_folder(request):
    """Every doc block starts in an empty folder of its own, with the same random state."""
    if MarkdownInlinePythonItem is not None and isinstance(request.node, MarkdownInlinePythonItem):
        request.getfixturevalue("monkeypatch").chdir(request.getfixturevalue("tmp_path"))
        torch.manual_seed(0)


@pytest.fixture
def stand_ins(request, tmp_path):
    """Write the stand-in files and folders the block names into its folder."""
    return _stand_ins().write_named(request.node.test_definition.source, tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _temporary_files_inside_basetemp(tmp_path_factory):
    """Docstring examples write with ``tempfile.mkdtemp()``: those folders go under pytest's own, removed afterwards."""
    folder = tmp_path_factory.mktemp("tempfile")
    previous, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = previous
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _doctest_torch(doctest_namespace):
    doctest_namespace["torch"] = torch
