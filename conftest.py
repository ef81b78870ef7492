"""Shared pytest set-up: docstring examples may use ``torch`` without importing it; parallel workers
(``pytest -n 2``) get one intra-op thread each, so two workers do not fight over the same cores."""

import os

import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _doctest_torch(doctest_namespace):
    doctest_namespace["torch"] = torch
