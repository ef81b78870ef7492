"""encdec's benchmark suite (lives in the repository, not in the installed package).

It compares encdec with the code users would otherwise run -- the reference architectures (the test-only
restatements in ``tests/reference``), segmentation_models_pytorch, torchmetrics, torchvision's VOC reader and
the reference's per-pixel colour loop -- and reports ratios with their goals (issue 6). Run it as
``python -m benchmarks [--quick] [--json PATH] [--markdown PATH]`` from a checkout (``make bench``).
The comparison libraries come with ``pip install -e '.[bench]'``.

Example:
    >>> from benchmarks import run_benchmarks
    >>> result = run_benchmarks(tiny=True, only=["metrics"])  # doctest: +SKIP
"""

from .run import main, run_benchmarks

__all__ = ["main", "run_benchmarks"]
