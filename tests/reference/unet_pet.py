"""Spec section 6: seed 003's Pet ``UNet`` (pool after the double conv, skip first, zero padding)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .resnet34_unet import DoubleConvBlock


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        # quirk: the pool comes after the double conv
        self.maxpool_conv = nn.Sequential(DoubleConvBlock(in_channels, out_channels), nn.MaxPool2d(2))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        self.conv = DoubleConvBlock(in_channels + in_channels // 2, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        dy = skip.size(2) - x.size(2)
        dx = skip.size(3) - x.size(3)
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([skip, x], 1))  # skip first


class OutConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.conv(x)


class UNetPet(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3):
        super().__init__()
        self.inC = DoubleConvBlock(in_channels, 64)
        self.down1 = Down(64, 128)
        self.down2 = Down(128, 256)
        self.down3 = Down(256, 512)
        self.down4 = Down(512, 1024)
        self.up1 = Up(1024, 512)
        self.up2 = Up(512, 256)
        self.up3 = Up(256, 128)
        self.up4 = Up(128, 64)
        self.outC = OutConv(64, num_classes)

    def forward(self, x):
        x1 = self.inC(x)  # 64 @ H
        x2 = self.down1(x1)  # 128 @ H/2
        x3 = self.down2(x2)  # 256 @ H/4
        x4 = self.down3(x3)  # 512 @ H/8
        x5 = self.down4(x4)  # 1024 @ H/16
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outC(x)
