"""Residual networks for the benchmarks, written out here because torchvision is not a dependency
(and has no CIFAR ResNets): ResNet-18 for 3 x 32 x 32 (CIFAR-shaped) inputs, the CIFAR ResNet-56 of
He et al. 2016, and a small ResNet-style model."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PadShortcut(nn.Module):
    """He et al.'s option A shortcut: the identity, subsampled by ``stride`` and padded with zero
    channels up to ``channels``; no parameters."""

    def __init__(self, inputs: int, channels: int, stride: int):
        super().__init__()
        self.stride, self.extra = stride, channels - inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class Block(nn.Module):
    """A basic residual block: two 3 x 3 convolutions with BatchNorm, and, when the stride or the
    width changes, a shortcut that is a 1 x 1 projection with BatchNorm (``shortcut="projection"``,
    He et al.'s option B) or the zero-padded identity (``"pad"``, option A, :class:`PadShortcut`)
    (He et al. 2016)."""

    def __init__(self, inputs: int, channels: int, stride: int = 1, shortcut: str = "projection"):
        super().__init__()
        if shortcut not in ("projection", "pad"):
            raise ValueError(f"Expected shortcut 'projection' or 'pad' but got {shortcut!r}")
        self.conv1 = nn.Conv2d(inputs, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut: nn.Module = nn.Identity()
        if (stride != 1 or inputs != channels) and shortcut == "pad":
            self.shortcut = PadShortcut(inputs, channels, stride)
        elif stride != 1 or inputs != channels:
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


#: ResNet-56's stages: (width, stride of the first block); 9 basic blocks each.
RESNET56_STAGES = ((16, 1), (32, 2), (64, 2))
#: Basic blocks per stage of ResNet-56: 6 n + 2 layers with n = 9.
RESNET56_BLOCKS = 9


def resnet56(classes: int = 10) -> nn.Module:
    """ResNet-56 for 32 x 32 inputs, the CIFAR-10 network of He et al. 2016 (section 4.2): a 3 x 3
    convolution of 16 channels, three stages of 9 basic blocks (16, 32 and 64 channels, the
    second and third starting with stride 2), global average pooling and a linear layer; 6 n + 2
    = 56 layers with weights (n = 9). The shortcuts are the paper's option A for CIFAR: the
    identity, zero-padded in channels and subsampled where a stage starts, so they add no
    parameters: 853,018 in all (the paper's 0.85 M)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)]
    layers.append(nn.ReLU())
    width = 16
    for channels, stride in RESNET56_STAGES:
        for k in range(RESNET56_BLOCKS):
            layers.append(Block(width, channels, stride if k == 0 else 1, shortcut="pad"))
            width = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes)]
    return nn.Sequential(*layers)
