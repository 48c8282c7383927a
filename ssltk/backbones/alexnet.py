"""AlexNet as used by SeLa (paper 004, section 4.1): torchvision's layer layout, with BatchNorm, on 224 px inputs.

Smaller inputs (CIFAR) are upsampled to ``input_size`` inside ``forward``, as in the SeLa CIFAR code. Features are
the 4096-d fc7 activations.
"""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..interfaces import Backbone


def _conv(c_in: int, c_out: int, k: int, s: int, p: int, bn: bool) -> list:
    layers = [nn.Conv2d(c_in, c_out, k, s, p, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.ReLU(inplace=True)]


class AlexNet(Backbone):
    """conv1-conv5 (64, 192, 384, 256, 256 channels, torchvision layout) then fc6 and fc7 (4096)."""

    def __init__(self, in_channels: int = 3, batch_norm: bool = True, input_size: int = 224,
                 weights: Optional[str] = None):
        super().__init__()
        self.input_size = input_size
        self.features = nn.Sequential(
            *_conv(in_channels, 64, 11, 4, 2, batch_norm), nn.MaxPool2d(3, 2),
            *_conv(64, 192, 5, 1, 2, batch_norm), nn.MaxPool2d(3, 2),
            *_conv(192, 384, 3, 1, 1, batch_norm),
            *_conv(384, 256, 3, 1, 1, batch_norm),
            *_conv(256, 256, 3, 1, 1, batch_norm), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        fc_norm = (lambda n: [nn.BatchNorm1d(n)]) if batch_norm else (lambda n: [])
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096), *fc_norm(4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), *fc_norm(4096), nn.ReLU(inplace=True),
        )
        self.num_features = 4096
        self.load_weights(weights)

    def probe_layers(self):
        """conv1-conv5: the ReLU after each convolution (paper 004, Table 2)."""
        relus = [m for m in self.features if isinstance(m, nn.ReLU)]
        return {f"conv{i + 1}": m for i, m in enumerate(relus)}

    def _resize(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(self._resize(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.avgpool(self.forward_features(x)).flatten(1))
