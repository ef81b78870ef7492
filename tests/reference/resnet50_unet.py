"""Spec section 4: ``UNetWithResnet50Encoder`` (bottleneck of the second kind, quirky decoder)."""

from __future__ import annotations

import torch
from torch import nn

from .unet_voc import conv


def cb(i, o, k, s, p):
    """Conv2d(bias) + BatchNorm2d, no ReLU."""
    return nn.Sequential(nn.Conv2d(i, o, k, stride=s, padding=p), nn.BatchNorm2d(o))


class ResidualBlock(nn.Module):
    """Lines 27-58 of the VOC report's listing. ``narrow=True`` restates the layout encdec 0.1 built instead, which
    used ``middle_channels`` in the non-downsampling branch too."""

    def __init__(self, in_channels, middle_channels, out_channels, downsample=False, narrow=False):
        super().__init__()
        self.downsample = downsample
        if downsample:
            self.layer = nn.Sequential(
                cb(in_channels, middle_channels, 1, 2, 0),
                cb(middle_channels, middle_channels, 3, 1, 1),
                cb(middle_channels, out_channels, 1, 1, 0),
            )
            self.downsize = cb(in_channels, out_channels, 1, 2, 0)
        else:
            # the listing's lines 41-45: middle_channels is not used here, the branch is out_channels wide
            inner = middle_channels if narrow else out_channels
            self.layer = nn.Sequential(
                cb(in_channels, inner, 1, 1, 0),
                cb(inner, inner, 3, 1, 1),
                cb(inner, out_channels, 1, 1, 0),
            )
            self.make_equal_channel = cb(in_channels, out_channels, 1, 1, 0)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.layer(x)
        if self.downsample:
            x = self.downsize(x)
        elif x.size() is not out.size():  # quirk: always true -> projection in every non-downsampling block
            x = self.make_equal_channel(x)
        return self.relu(out + x)


class UNetWithResnet50Encoder(nn.Module):
    def __init__(self, num_classes: int = 22, in_channels: int = 3, narrow: bool = False):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool2d(3, 2, 1, return_indices=False)
        self.layer2 = nn.Sequential(
            ResidualBlock(64, 64, 256, narrow=narrow),
            ResidualBlock(256, 64, 256, narrow=narrow),
            ResidualBlock(256, 64, 256, downsample=True, narrow=narrow),
        )
        self.layer3 = nn.Sequential(
            ResidualBlock(256, 128, 512, narrow=narrow),
            ResidualBlock(512, 128, 512, narrow=narrow),
            ResidualBlock(512, 128, 512, narrow=narrow),
            ResidualBlock(512, 128, 512, narrow=narrow),
        )
        self.bridge = conv(512, 512)
        self.UpConv1 = nn.Conv2d(512, 256, 3, padding=1)
        self.UnetConv1 = conv(512, 256)
        self.upconv2_1 = nn.ConvTranspose2d(256, 256, 3, stride=2, padding=1)
        self.upconv2_2 = nn.Conv2d(256, 64, 3, padding=1)
        self.UnetConv2_1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1)  # quirk: never used in forward
        self.UnetConv2_2 = nn.ConvTranspose2d(128, 128, 3, stride=2, padding=1)
        self.UnetConv2_3 = nn.Conv2d(128, 64, 3, padding=1)
        self.UnetConv3 = nn.Conv2d(64, num_classes, 1)
        self.unpool = nn.MaxUnpool2d(3, 2, 1)  # quirk: never used in forward

    def forward(self, x):
        n, _, h, w = x.shape
        x = self.layer1(x)
        out1 = self.pool(x)
        out2 = self.layer2(out1)
        x = self.layer3(out2)
        x = self.bridge(x)
        x = self.UpConv1(x)
        x = self.UnetConv1(torch.cat((x, out2), 1))
        # the reference hard-codes these sizes for 256x256 (64, 128, 256); here (H/4, H/2, H)
        x = self.upconv2_1(x, output_size=torch.Size([n, 256, h // 4, w // 4]))
        x = self.upconv2_2(x)
        x = torch.cat((x, out1), 1)
        x = self.UnetConv2_2(x, output_size=torch.Size([n, 128, h // 2, w // 2]))
        x = self.UnetConv2_2(x, output_size=torch.Size([n, 128, h, w]))  # quirk: the same module twice
        x = self.UnetConv2_3(x)
        return self.UnetConv3(x)
