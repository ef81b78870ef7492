"""``encdec.model_summary``: counts against the real model, and the activation estimate against a measurement."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import encdec
from encdec.summary import count_parameters, model_summary

SCRIPTS = Path(__file__).resolve().parent / "scripts"
TOLERANCE = 0.2  # resident memory also holds allocator slack and small buffers


def test_summary_of_a_module_equals_that_of_its_name():
    model = encdec.unet(num_classes=3, widths=(8, 16, 32, 64, 128))
    by_module = model_summary(model, 64, batch_size=2)
    by_name = model_summary("unet", 64, batch_size=2, num_classes=3, widths=(8, 16, 32, 64, 128))
    assert by_module["parameters"] == by_name["parameters"] == sum(p.numel() for p in model.parameters())
    assert by_module["flops_per_image"] == by_name["flops_per_image"]
    assert by_module["memory"] == by_name["memory"]
    assert next(model.parameters()).device.type == "cpu"  # the module itself was not moved to the meta device


def test_flops_equal_a_real_forward_and_fixed_size_models_are_built_for_the_size():
    report = model_summary("resfcn18", 16, batch_size=2, num_classes=3)
    model = encdec.resfcn18(num_classes=3, input_size=16).train()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(2, 3, 16, 16))
    assert report["flops_per_image"] == counter.get_total_flops() / 2
    assert report["size_rule"] == "exactly 16x16" and report["output_shape"] == [3]
    assert count_parameters("resfcn18", input_size=16, num_classes=3) == report["parameters"]


def test_a_size_the_model_refuses_is_an_input_size_error():
    with pytest.raises(encdec.InputSizeError, match="Nearest valid sizes: 192 and 256"):
        model_summary("resnet34_unet", 250)


@pytest.mark.slow
@pytest.mark.parametrize("name, size, batch", [("unet", 256, 8), ("resnet34_unet", 256, 4), ("custom_cnn", 128, 64)])
def test_activation_estimate_matches_the_measured_memory(name, size, batch):
    done = subprocess.run([sys.executable, str(SCRIPTS / "activation_memory.py"), name, str(size), str(batch)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    measured, estimate = map(int, done.stdout.split()[-2:])
    print(f"{name} {size}x{size} batch {batch}: measured {measured / 2**20:.1f} MiB, "
          f"estimated {estimate / 2**20:.1f} MiB, ratio {measured / estimate:.3f}")
    assert abs(measured / estimate - 1) <= TOLERANCE
