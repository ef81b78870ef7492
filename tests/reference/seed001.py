"""Spec section 7: seed 001's classifiers (``custom_cnn``, the ResNet-18 wrapper, ``resfcn18``)."""

from __future__ import annotations

import torch.nn.functional as F
import torchvision
from torch import nn


class CustomCNN(nn.Module):
    def __init__(self, num_classes: int = 4, in_channels: int = 3):
        super().__init__()
        chans = [in_channels, 32, 64, 128, 256, 512]
        for i in range(5):
            block = nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
                nn.AvgPool2d(2, 2),
            )
            setattr(self, f"block{i + 1}", block)
        self.fc1 = nn.Linear(512, 256)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        for i in range(1, 6):
            x = getattr(self, f"block{i}")(x)
        x = x.view(x.size(0), -1)  # 512 x 1 x 1 at 32x32
        return self.fc2(self.relu(self.fc1(x)))


class ResNet18Classifier(nn.Module):
    def __init__(self, num_classes: int = 4):
        super().__init__()
        self.resnet18 = torchvision.models.resnet18(weights=None)
        self.resnet18.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        return self.resnet18(x)


def _avgpool_features(pool, x):
    """AvgPool1d over the feature axis: (N, F) -> (N, 1, F) -> pool -> (N, F')."""
    return pool(x.view(x.size(0), 1, -1)).view(x.size(0), -1)


class ResidualMLPBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        half = features // 2
        self.fc1 = nn.Linear(features, half)
        self.bn1 = nn.BatchNorm1d(half)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(half, half)
        self.bn2 = nn.BatchNorm1d(half)
        self.shortcut = nn.AvgPool1d(3, 2, 1)

    def forward(self, x):
        out = self.relu(self.bn1(self.fc1(x)))
        out = self.bn2(self.fc2(out))
        return F.relu(out + _avgpool_features(self.shortcut, x))


class ResFCN18(nn.Module):
    def __init__(self, num_classes: int = 100, in_channels: int = 3, input_size: int = 192):
        super().__init__()
        self.fc1 = nn.Linear(in_channels * input_size**2, 4096)
        self.bn1 = nn.BatchNorm1d(4096)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.AvgPool1d(3, 2, 1)  # the name says max, the op is average
        self.block1 = nn.Sequential(ResidualMLPBlock(2048), ResidualMLPBlock(1024))
        self.block2 = nn.Sequential(ResidualMLPBlock(512), ResidualMLPBlock(256))
        self.block3 = nn.Sequential(ResidualMLPBlock(128), ResidualMLPBlock(64))
        self.block4 = nn.Sequential(ResidualMLPBlock(32), ResidualMLPBlock(16))
        self.fc2 = nn.Linear(8, num_classes)

    def forward(self, x):
        x = x.reshape(x.size(0), -1)
        x = self.relu(self.bn1(self.fc1(x)))
        x = _avgpool_features(self.maxpool, x)  # 4096 -> 2048
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.block4(x)
        return self.fc2(x)
