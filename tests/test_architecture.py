"""The package's structure holds: layers, no cycles, no function-level imports of encdec's own modules, no
private names reached across modules, small modules, one size contract, a short ``fit``."""

from __future__ import annotations

import ast
import importlib
import inspect
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import encdec

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "encdec"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

# Modules allowed beyond ~500 lines, and why.
LONG_MODULES = {
    # one concern: every segmentation and classification score from one confusion matrix; more than half of it
    # is the docstrings (definitions and examples) the metrics page is generated from
    "metrics.py": 800,
}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _absolute(path: Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved against ``path``)."""
    if not node.level:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_no_function_level_imports_of_encdec_modules():
    found = []
    for path, tree in _modules():
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("encdec")):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "encdec" for a in node.names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, f"imports of encdec modules inside functions: {found}"


def test_no_module_imports_another_modules_private_names():
    found = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _absolute(path, node)
            if not source.startswith("encdec"):
                continue
            for alias in node.names:
                if not alias.name.startswith("_") or alias.name.startswith("__"):
                    continue
                if importlib.util.find_spec(f"{source}.{alias.name}") is None:  # a private module is fine
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {source}.{alias.name}")
    assert not found, found


def test_modules_are_small():
    too_long = []
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        if lines > LONG_MODULES.get(str(path.relative_to(PACKAGE)), 500):
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, too_long


def test_fit_reads_like_a_recipe_of_about_a_hundred_lines():
    source = inspect.getsource(encdec.fit)
    body = source[source.index('"""', source.index('"""') + 3) + 3:]  # after the docstring
    lines = [line for line in body.splitlines() if line.strip()]
    assert len(lines) <= 100, f"fit's body has {len(lines)} lines"


@pytest.mark.parametrize("name", encdec.list_models())
def test_registry_size_rule_comes_from_the_models_own_contract(name):
    model = encdec.create_model(name) if name != "resfcn18" else encdec.create_model(name, input_size=32)
    spec = model.input_spec
    info = encdec.model_info(name)
    if name == "resfcn18":
        assert spec.fixed == 32 and info.size_rule == "exactly 192x192" and info.input_size == 192
        return
    assert info.size_rule == spec.rule() and info.input_size == spec.reference
    side = spec.valid_size(spec.min_size + 1)
    x = torch.zeros(1, spec.channels, side, side)
    with torch.no_grad():
        model.eval()(x)  # the next valid size is accepted
    bad = side + 1 if spec.multiple > 1 else spec.min_size - 1
    with pytest.raises(encdec.InputSizeError, match="Nearest valid sizes" if spec.multiple > 1 else "at least"):
        model(torch.zeros(1, spec.channels, bad, side))


@pytest.mark.slow
@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (the test extra)")
def test_import_contracts_hold_and_catch_a_violation(tmp_path):
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    # the same contracts on a renamed copy of the package (the installed one would be found first), in which a
    # low layer imports a high one
    shutil.copytree(PACKAGE, tmp_path / "copied", ignore=shutil.ignore_patterns("__pycache__"))
    config = (ROOT / "pyproject.toml").read_text()
    contracts = config[config.index("[tool.importlinter]"):].replace('"encdec', '"copied')
    (tmp_path / "pyproject.toml").write_text(contracts)
    metrics = tmp_path / "copied" / "metrics.py"
    metrics.write_text(metrics.read_text() + "\nfrom .training import fit  # noqa: E402\n")
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "copied.metrics -> copied.training" in done.stdout, done.stdout[-3000:]
