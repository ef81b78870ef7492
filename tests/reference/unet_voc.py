"""Spec section 3: the VOC ``unet`` (keys ``convDown1.0.weight`` ... ``convUp_fin.weight``)."""

from __future__ import annotations

import torch
from torch import nn


def conv(i, o):
    """Double conv: Conv [0], BN [1], ReLU, Conv [3], BN [4], ReLU (convs with bias)."""
    return nn.Sequential(
        nn.Conv2d(i, o, 3, padding=1),
        nn.BatchNorm2d(o),
        nn.ReLU(inplace=True),
        nn.Conv2d(o, o, 3, padding=1),
        nn.BatchNorm2d(o),
        nn.ReLU(inplace=True),
    )


class UNetVOC(nn.Module):
    def __init__(self, num_classes: int = 22, in_channels: int = 3):
        super().__init__()
        self.convDown1 = conv(in_channels, 64)
        self.convDown2 = conv(64, 128)
        self.convDown3 = conv(128, 256)
        self.convDown4 = conv(256, 512)
        self.convDown5 = conv(512, 1024)
        self.maxpool = nn.MaxPool2d(2, 2)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.convUp4 = conv(1024 + 512, 512)
        self.convUp3 = conv(512 + 256, 256)
        self.convUp2 = conv(256 + 128, 128)
        self.convUp1 = conv(128 + 64, 64)
        self.convUp_fin = nn.Conv2d(64, num_classes, 1)

    def forward(self, x):
        conv1 = self.convDown1(x)
        x = self.maxpool(conv1)
        conv2 = self.convDown2(x)
        x = self.maxpool(conv2)
        conv3 = self.convDown3(x)
        x = self.maxpool(conv3)
        conv4 = self.convDown4(x)
        x = self.maxpool(conv4)
        x = self.convDown5(x)
        # decoder: cat((upsampled x, skip), dim=1), upsampled tensor first
        x = self.convUp4(torch.cat((self.upsample(x), conv4), dim=1))
        x = self.convUp3(torch.cat((self.upsample(x), conv3), dim=1))
        x = self.convUp2(torch.cat((self.upsample(x), conv2), dim=1))
        x = self.convUp1(torch.cat((self.upsample(x), conv1), dim=1))
        return self.convUp_fin(x)
