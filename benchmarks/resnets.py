"""Residual networks for the benchmarks: ResNet-18 for 3 x 32 x 32 (CIFAR-shaped) inputs, written
out here because torchvision is not a dependency, and a small ResNet-style model."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    """A basic residual block: two 3 x 3 convolutions with BatchNorm, and a 1 x 1 projection of
    the shortcut when the stride or the width changes (He et al. 2016)."""

    def __init__(self, inputs: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or inputs != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inputs, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.shortcut(x) + self.bn2(self.conv2(out)))


def resnet(channels: int = 16, blocks: int = 2, classes: int = 10) -> nn.Module:
    """A small ResNet for 3 x 32 x 32 inputs: a stem, ``blocks`` residual blocks, a pooled head."""
    return nn.Sequential(
        nn.Conv2d(3, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        *(Block(channels, channels) for _ in range(blocks)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, classes),
    )


def resnet18(classes: int = 10) -> nn.Module:
    """ResNet-18 for 32 x 32 inputs (3 x 3 stem, no max pooling): 11.2 M parameters."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
    ]
    width = 64
    for channels, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(width, channels, stride), Block(channels, channels)]
        width = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, classes)]
    return nn.Sequential(*layers)
