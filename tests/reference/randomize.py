"""Deterministic randomisation of a module's parameters and BatchNorm running statistics.

Default initialisation leaves BatchNorm at mean 0 / var 1 / weight 1 / bias 0, which would let a loader that
drops or swaps BN buffers go unnoticed. ``randomize_`` fills every parameter and every BN buffer from a seeded
generator; with ``calibration_input`` it first sets the running statistics to the real statistics of one batch
(then perturbs them), so activations stay O(1) through deep stacks and a 1e-5 absolute tolerance stays
meaningful.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _uniform(shape, low, high, gen):
    return torch.rand(shape, generator=gen) * (high - low) + low


@torch.no_grad()
def randomize_(
    module: nn.Module, seed: int = 0, calibration_input: Optional[torch.Tensor] = None
) -> nn.Module:
    """Fill ``module``'s parameters and BN buffers deterministically from ``seed``; returns ``module``.

    Weights of rank >= 2 get U(-b, b) with b = sqrt(6 / fan_in) (He-uniform), biases N(0, 0.1^2), BN weights
    U(0.5, 1.5), BN biases N(0, 0.1^2), running_mean N(0, 0.1^2), running_var U(0.5, 2) (always positive),
    num_batches_tracked a small positive count. The module is left in eval mode.
    """
    gen = torch.Generator().manual_seed(seed)
    for mod in module.modules():
        for name, p in mod.named_parameters(recurse=False):
            if isinstance(mod, _BN) and name == "weight":
                value = _uniform(p.shape, 0.5, 1.5, gen)
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                if isinstance(mod, nn.modules.conv._ConvTransposeNd):
                    # weight is (in, out/groups, *k): each output sees in * prod(k) / prod(stride) inputs
                    fan_in = p.shape[0] * p[0, 0].numel() / math.prod(mod.stride)
                bound = math.sqrt(6.0 / fan_in)
                value = _uniform(p.shape, -bound, bound, gen)
            else:
                value = torch.randn(p.shape, generator=gen) * 0.1
            p.copy_(value.to(p.dtype))
        if isinstance(mod, _BN) and mod.track_running_stats:
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=gen) * 0.1)
            mod.running_var.copy_(_uniform(mod.running_var.shape, 0.5, 2.0, gen))
            mod.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))

    if calibration_input is not None:
        bns = [m for m in module.modules() if isinstance(m, _BN) and m.track_running_stats]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
        module.train()
        module(calibration_input)
        for m, momentum in zip(bns, momenta):
            m.momentum = momentum
            std = m.running_var.sqrt()
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=gen) * 0.1 * std)
            m.running_var.mul_(torch.exp(_uniform(m.running_var.shape, -0.3, 0.3, gen)))
            m.running_var.clamp_(min=1e-3)
            m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
    module.eval()
    return module
