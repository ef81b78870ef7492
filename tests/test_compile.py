"""``torch.compile``: every segmentation model's forward is one graph, without breaks, and matches eager mode.

``torch.compile(model, fullgraph=True)`` runs each segmentation model (the small variants at two input sizes,
the 11-38M-parameter reference builders at one) and must match eager outputs; ``fullgraph=True`` turns any
graph break into an error (a control test shows it does), and ``torch._dynamo.explain`` reports one graph and
no break for the Pet U-Net, whose decoder pads by size, and for a classifier. The Python input check in
``SegmentationModel.forward`` is skipped while compiling.

The compile backend is ``aot_eager`` by default: it runs the same Dynamo capture and AOTAutograd tracing as the
default backend, without Inductor's C++ code generation, which takes minutes per model on a small CPU machine.
``ENCDEC_COMPILE_BACKEND=inductor pytest tests/test_compile.py`` runs the same tests with the default backend.

The model-side input errors live here too: they are Python checks in ``forward``, so they must raise clear
errors in eager mode and must not break the compiled graph.
"""

from __future__ import annotations

import os
from typing import Callable, List, Tuple

import pytest
import torch
from torch import nn

import encdec

pytestmark = pytest.mark.slow  # part of make test; make check leaves it out

BACKEND = os.environ.get("ENCDEC_COMPILE_BACKEND", "aot_eager")

Sizes = List[Tuple[int, int, int]]  # (batch, height, width)

SEGMENTATION: List[Tuple[str, Callable[[], nn.Module], Sizes]] = [
    ("unet-small", lambda: encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128)), [(1, 32, 32), (2, 48, 64)]),
    ("unet-resnet18-encoder", lambda: encdec.unet(encoder="resnet18", num_classes=2,
                                                  decoder_channels=(32, 16, 16, 8, 8)), [(1, 32, 32), (1, 64, 32)]),
    ("unet_pet-small", lambda: encdec.unet_pet(widths=(8, 16, 32, 64, 128)), [(1, 32, 32), (1, 33, 47)]),
    # The reference-size builders (no small variants) compile at one size: each compile takes 10-20 s here.
    ("resnet34_unet", encdec.resnet34_unet, [(1, 64, 128)]),
    ("resnet50_unet", encdec.resnet50_unet, [(1, 40, 56)]),
]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def inputs(model: nn.Module, sizes: Sizes) -> List[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(b, model.in_channels, h, w, generator=g) for b, h, w in sizes]


def assert_one_graph(model: nn.Module, x: torch.Tensor) -> None:
    explanation = torch._dynamo.explain(model)(x)
    reasons = [str(b.reason) for b in explanation.break_reasons]
    assert explanation.graph_break_count == 0, f"graph breaks: {reasons}"
    assert explanation.graph_count == 1, f"{explanation.graph_count} graphs"


@pytest.mark.parametrize("name,build,sizes", SEGMENTATION, ids=[c[0] for c in SEGMENTATION])
def test_segmentation_forward_compiles_as_one_graph_and_matches_eager(name, build, sizes):
    model = build().eval()
    compiled = torch.compile(model, backend=BACKEND, fullgraph=True, dynamic=False)
    with torch.no_grad():
        for x in inputs(model, sizes):
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)


def test_explain_finds_no_graph_break():
    assert_one_graph(encdec.unet_pet(widths=(8, 16, 32, 64, 128)).eval(), torch.randn(1, 3, 33, 47))
    torch._dynamo.reset()
    assert_one_graph(encdec.custom_cnn(num_classes=3).eval(), torch.randn(2, 3, 32, 32))


class _Breaks(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum().item() > 0:  # data-dependent Python control flow: a graph break
            return x + 1
        return x - 1


def test_controls_graph_breaks_are_detected():
    explanation = torch._dynamo.explain(_Breaks())(torch.ones(2))
    assert explanation.graph_break_count >= 1
    torch._dynamo.reset()
    with pytest.raises(Exception, match="(?i)graph break|unsupported|data-dependent"):
        torch.compile(_Breaks(), backend=BACKEND, fullgraph=True)(torch.ones(2))


# ----------------------------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64, torch.bool])
@pytest.mark.parametrize("build", [lambda: encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)),
                                   lambda: encdec.custom_cnn(num_classes=2),
                                   lambda: encdec.resfcn18(num_classes=2, input_size=32)],
                         ids=["segmentation", "classifier", "residual-mlp"])
def test_integer_images_are_refused_with_advice(build, dtype):
    model = build().eval()
    x = torch.zeros(1, 3, 32, 32, dtype=dtype)
    with pytest.raises(encdec.InputSizeError, match=rf"expected floating-point images, got {dtype}; "
                                                    r"convert with x\.float\(\) / 255 and normalise"):
        model(x)
    assert model(x.float()).dtype == torch.float32


def test_shape_errors_are_checked_before_dtype():
    model = encdec.unet(num_classes=2, widths=(4, 8, 16, 32, 64)).eval()
    with pytest.raises(encdec.InputSizeError, match=r"\(N, C, H, W\)"):
        model(torch.zeros(3, 32, 32, dtype=torch.uint8))
    with pytest.raises(encdec.InputSizeError, match="in_channels=1"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(encdec.InputSizeError, match="Nearest valid sizes: 32 and 48"):
        model(torch.zeros(1, 3, 40, 32))
