"""``resfcn18``: the dog-image residual fully-connected network ("FCN" = fully connected)."""

from __future__ import annotations

import os
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._registry import ReferenceCheckpoint, register_model
from ..blocks import ResidualMLPBlock, feature_avg_pool
from ..weights import remap_keys
from ._base import InputSpec

__all__ = ["ResFCN", "resfcn18"]

PathLike = Union[str, os.PathLike]


class ResFCN(nn.Module):
    """Flatten the image, ``Linear -> BatchNorm1d -> ReLU -> feature AvgPool``, residual MLP stages, a linear head.

    Args:
        num_classes: Output classes.
        in_channels: Image channels.
        input_size: Side of the square input the first linear layer is sized for.
        width: Output features of the first linear layer (halved by the pool, then by every block).
        depths: Residual blocks per stage.

    Example:
        >>> ResFCN(4, input_size=16)(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 4])
    """

    def __init__(self, num_classes: int, in_channels: int = 3, input_size: int = 192, width: int = 4096,
                 depths=(2, 2, 2, 2)) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.input_size = input_size
        self.input_spec = InputSpec(in_channels, fixed=input_size, reference=input_size)
        self.fc_in = nn.Linear(in_channels * input_size * input_size, width)
        self.bn_in = nn.BatchNorm1d(width)
        features = width // 2
        stages = []
        for depth in depths:
            blocks = []
            for _ in range(depth):
                blocks.append(ResidualMLPBlock(features))
                features //= 2
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.head = nn.Linear(features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        self.input_spec.check(x, "resfcn18")
        x = F.relu(self.bn_in(self.fc_in(torch.flatten(x, 1))), inplace=True)
        return self.head(self.blocks(feature_avg_pool(x)))


def resfcn_filter(state: dict, model: nn.Module) -> dict:
    """Rename the reference ``fc1`` / ``bn1`` / ``block1..4`` / ``fc2`` keys.

    Example:
        >>> import torch
        >>> list(resfcn_filter({"block2.1.bn2.weight": torch.zeros(1), "fc1.bias": torch.zeros(1)}, None))
        ['blocks.1.1.bn2.weight', 'fc_in.bias']
    """
    rules = [
        (r"^fc1\.", "fc_in."),
        (r"^bn1\.", "bn_in."),
        (r"^block(\d)\.", lambda m: f"blocks.{int(m[1]) - 1}."),
        (r"^fc2\.", "head."),
    ]
    return remap_keys(state, rules)


RESFCN18_REFERENCE = ReferenceCheckpoint(
    "resfcn18.pth", "dog images", 100, 192,
)


@register_model(
    task="classification", checkpoint_filter=resfcn_filter, reference_checkpoints=(RESFCN18_REFERENCE,),
)
def resfcn18(
    *, num_classes: int = 100, in_channels: int = 3, input_size: int = 192, weights: Optional[PathLike] = None
) -> ResFCN:
    """The dog-image reference residual fully-connected network.

    The image (``input_size`` square, 192 in the reference) is flattened into ``Linear(3*192*192, 4096)``,
    BatchNorm1d, ReLU and an average pool over features (4096 -> 2048; the reference calls it ``maxpool``), then
    four stages of two ``ResidualMLPBlock``s (2048 -> 8 features) and ``Linear(8, num_classes)``.

    Memory: at ``input_size=192`` the first layer alone holds 453M parameters, 1.8 GB in float32 (3.6 GB
    more for Adam's state while training). Use a small ``input_size`` to experiment.

    Args:
        num_classes: Output classes (the reference default is 100).
        in_channels: Image channels.
        input_size: Side of the square input.
        weights: A checkpoint (reference keys ``fc1.weight`` ... ``fc2.bias``, or encdec's), loaded after
            building.

    Example:
        >>> import torch, encdec
        >>> encdec.resfcn18(num_classes=4, input_size=16).eval()(torch.zeros(2, 3, 16, 16)).shape
        torch.Size([2, 4])
    """
    return ResFCN(num_classes, in_channels, input_size)
