"""Spec section 5: seed 003's ``resnet34_unet`` (Pet; keys like ``encoder3.0.down_sample.0.weight``)."""

from __future__ import annotations

import torch
from torch import nn


class DoubleConvBlock(nn.Module):
    """``net``: Conv(no bias) [0], BN(affine=False) [1], ReLU, Conv [3], BN(affine=False) [4], ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels, affine=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels, affine=False),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.net(x)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, is_downsample=False):
        super().__init__()
        self.conv_x = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.is_downsample = is_downsample
        if is_downsample:
            self.down_sample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, 2), nn.BatchNorm2d(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = self.down_sample(x) if self.is_downsample else x
        return self.relu(shortcut + self.conv_x(x))


class DecoderBlock(nn.Module):
    def __init__(self, in_channels, out_channels, up_in=None, up_out=None):
        super().__init__()
        up_in = in_channels if up_in is None else up_in
        up_out = out_channels if up_out is None else up_out
        self.up = nn.ConvTranspose2d(up_in, up_out, 2, stride=2)
        self.conv = DoubleConvBlock(in_channels, out_channels)

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], 1))


class ResNet34UNet(nn.Module):
    def __init__(self, num_classes: int = 2, in_channels: int = 3):
        super().__init__()
        self.encoder1 = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        )
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.encoder2 = nn.Sequential(*[ResidualBlock(64, 64) for _ in range(3)])
        self.encoder3 = nn.Sequential(
            ResidualBlock(64, 128, 2, True), *[ResidualBlock(128, 128) for _ in range(3)]
        )
        self.encoder4 = nn.Sequential(
            ResidualBlock(128, 256, 2, True), *[ResidualBlock(256, 256) for _ in range(5)]
        )
        self.encoder5 = nn.Sequential(
            ResidualBlock(256, 512, 2, True), *[ResidualBlock(512, 512) for _ in range(2)]
        )
        self.bridge = nn.Sequential(
            nn.Conv2d(512, 1024, 3, padding=1, bias=False),
            nn.BatchNorm2d(1024),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2, 2),
        )
        self.decoder1 = DecoderBlock(1024, 512)
        self.decoder2 = DecoderBlock(512, 256)
        self.decoder3 = DecoderBlock(256, 128)
        self.decoder4 = DecoderBlock(128, 64)
        self.decoder5 = DecoderBlock(128, 64, 64, 64)
        self.dropout = nn.Dropout(0.5)
        self.lastlayer = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 2, 2),
            nn.Conv2d(64, num_classes, 3, padding=1, bias=False),
        )

    def forward(self, x):
        e1 = self.encoder1(x)  # 64 @ H/2
        e2 = self.encoder2(self.pool(e1))  # 64 @ H/4
        e3 = self.encoder3(e2)  # 128 @ H/8
        e4 = self.encoder4(e3)  # 256 @ H/16
        e5 = self.encoder5(e4)  # 512 @ H/32
        x = self.bridge(e5)  # 1024 @ H/64
        x = self.dropout(self.decoder1(x, e5))
        x = self.dropout(self.decoder2(x, e4))
        x = self.dropout(self.decoder3(x, e3))
        x = self.dropout(self.decoder4(x, e2))
        x = self.decoder5(x, e1)
        return self.lastlayer(x)
