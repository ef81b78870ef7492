# `make test` and `make demo` create .venv on first use and reuse it afterwards.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.encdec-installed
# Tests that run NNCF (encdec.quantize) in their own process: a process that ran it segfaults when it later forks
# DataLoader workers, so these must not share a test worker with the rest.
APART := tests/test_quantization.py encdec/quantization.py

.PHONY: install check test demo lint docs bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	$(PY) -m pip install --quiet --no-cache-dir $(TORCH_SPEC)
	$(PY) -m pip install --quiet --no-cache-dir -e '.[test,plot,onnx,openvino,tensorboard,docs]'
	touch $(STAMP)

install: $(STAMP)

# The quick loop while editing: lint, the import contracts, and every test not marked slow (under a minute).
check: $(STAMP)
	$(VENV)/bin/ruff check encdec tests examples benchmarks docs/_hooks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 -m "not slow and not benchmark" $(APART:%=--ignore=%)
	$(PY) -m pytest -q -p no:xdist -m "not slow and not benchmark" $(APART)

# Everything, as CI runs it.
test: $(STAMP)
	$(VENV)/bin/ruff check encdec tests examples benchmarks docs/_hooks
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 $(APART:%=--ignore=%)
	$(PY) -m pytest -q -p no:xdist $(APART)

demo: $(STAMP)
	$(VENV)/bin/encdec demo --out demo-output

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)
	$(PY) -m pip install --quiet --no-cache-dir -e '.[bench]'
	$(PY) -m benchmarks --json bench.json --markdown bench.md

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) build dist site *.egg-info
