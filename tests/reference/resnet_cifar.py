"""Spec section 2: the course-style ``resnet50_cifar`` (not torchvision's ResNet-50)."""

from __future__ import annotations

from torch import nn


def cbr(i, o, k, s, p):
    """Conv2d(bias) + BatchNorm2d + ReLU; keys ``.0`` (conv) and ``.1`` (BN)."""
    return nn.Sequential(nn.Conv2d(i, o, k, stride=s, padding=p), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, middle_channels, out_channels, downsample=False):
        super().__init__()
        self.downsample = downsample
        s = 2 if downsample else 1
        self.layer = nn.Sequential(
            cbr(in_channels, middle_channels, 1, s, 0),
            cbr(middle_channels, middle_channels, 3, 1, 1),
            cbr(middle_channels, out_channels, 1, 1, 0),  # BN *and* ReLU after the last conv too
        )
        if downsample:
            self.downsize = cbr(in_channels, out_channels, 1, 2, 0)
        else:
            self.make_equal_channel = cbr(in_channels, out_channels, 1, 1, 0)

    def forward(self, x):
        out = self.layer(x)
        if self.downsample:
            x = self.downsize(x)
        elif x.size() is not out.size():  # quirk: identity test, always true -> projection in every block
            x = self.make_equal_channel(x)
        return out + x  # no ReLU after the sum


class ResNet50Cifar(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.layer1 = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.layer2 = nn.Sequential(
            ResidualBlock(64, 64, 256),
            ResidualBlock(256, 64, 256),
            ResidualBlock(256, 64, 256, downsample=True),
        )
        self.layer3 = nn.Sequential(
            ResidualBlock(256, 128, 512),
            ResidualBlock(512, 128, 512),
            ResidualBlock(512, 128, 512),
            ResidualBlock(512, 128, 512, downsample=True),
        )
        self.layer4 = nn.Sequential(
            ResidualBlock(512, 256, 1024),
            *[ResidualBlock(1024, 256, 1024) for _ in range(5)],
        )
        self.avgpool = nn.AvgPool2d(2, 2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        x = self.avgpool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)
