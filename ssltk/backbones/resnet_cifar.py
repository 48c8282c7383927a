"""CIFAR-style ResNet-8/32/56 (He et al. 2016, section 4.2), as used in paper 000 appendix A.2.

Stem conv3x3 stride 1 -> BN -> ReLU without max-pool; three stages of BasicBlocks with 16/32/64 channels, stages 2
and 3 downsampling by stride 2 with a 1x1 conv + BN shortcut; global average pooling to 64 features.
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from ..interfaces import Backbone


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetCifar(Backbone):
    """A CIFAR ResNet with ``blocks`` BasicBlocks per stage (depth = 6 * blocks + 2)."""

    min_size = 4  # two stride-2 stages

    def __init__(self, blocks: Sequence[int] = (5, 5, 5), in_channels: int = 3, widths: Sequence[int] = (16, 32, 64),
                 weights: Optional[str] = None):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        stages, c_in = [], widths[0]
        for i, (n, c_out) in enumerate(zip(blocks, widths)):
            layers = []
            for b in range(n):
                layers.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and b == 0) else 1))
                c_in = c_out
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = widths[-1]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.load_weights(weights)

    def probe_layers(self):
        return {"stem": self.stem, **{f"stage{i + 1}": m for i, m in enumerate(self.stages)}}

    def forward_features(self, x: Tensor) -> Tensor:
        return self.stages(self.stem(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.forward_features(x)).flatten(1)


class ResNet8(ResNetCifar):
    """ResNet-8: one BasicBlock per stage."""

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__((1, 1, 1), in_channels, weights=weights)


class ResNet32(ResNetCifar):
    """ResNet-32: five BasicBlocks per stage, about 0.46M parameters."""

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__((5, 5, 5), in_channels, weights=weights)


class ResNet56(ResNetCifar):
    """ResNet-56: nine BasicBlocks per stage."""

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__((9, 9, 9), in_channels, weights=weights)


class ResNet18Cifar(ResNetCifar):
    """ResNet-18 in the CIFAR layout the SSL benchmarks use (lightly, solo-learn): two BasicBlocks in each of four
    stages of 64/128/256/512 channels, a 3x3 stride-1 stem and no max-pool; 512 features, about 11.2M parameters."""

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__((2, 2, 2, 2), in_channels, widths=(64, 128, 256, 512), weights=weights)
