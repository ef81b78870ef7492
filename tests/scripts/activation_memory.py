"""Print the resident memory a training-mode forward pass keeps alive (what autograd saves), measured.

Usage: python activation_memory.py MODEL SIZE BATCH. Prints ``<measured bytes> <model_summary's estimate>``.
The measurement is the growth of this process's resident set size over one forward pass that keeps its graph,
minus the output itself, after a warm-up pass under ``no_grad`` (so kernels and the allocator are warm).
"""

import gc
import os
import sys

import torch

import encdec
from encdec.summary import model_summary

TINY = {"unet": {"widths": (8, 16, 32, 64, 128), "num_classes": 3}}


def resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    name, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kwargs = TINY.get(name, {})
    estimate = model_summary(name, size, batch_size=batch, **kwargs)["memory"]["activations"]
    torch.set_num_threads(1)
    model = encdec.create_model(name, **kwargs).train()
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        model(x[:2])
    gc.collect()
    before = resident()
    y = model(x)
    measured = resident() - before - y.numel() * y.element_size()
    print(measured, estimate)


if __name__ == "__main__":
    main()
