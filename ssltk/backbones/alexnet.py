"""AlexNet as used by SeLa (paper 004, section 4.1; authors' ``models/alexnet.py``), on 224 px inputs.

``size: big`` (the authors' default and ssltk's): conv 96(11, s4, p2) - M - 256(5, p2) - M - 384(3) - 384(3) -
256(3) - M, each convolution followed by BatchNorm and ReLU, MaxPool(3, 2); then Dropout(0.5) - Linear(9216, 4096) -
ReLU - Dropout(0.5) - Linear(4096, 4096) - ReLU, with no BatchNorm in the fully connected layers. Convolutions are
initialised from N(0, sqrt(2 / (k * k * C_out))), linear layers from N(0, 0.01) with zero bias.
``size: small`` is torchvision's layout (64-192-384-256-256), about 3 points lower in paper 004's Table 4.
``fc_batch_norm: true`` restores BatchNorm in fc6/fc7 (ssltk's layout before 0.2).

Smaller inputs (CIFAR) are upsampled to ``input_size`` inside ``forward``; the authors' CIFAR code resizes the
images to 256 and crops 224 before augmenting, so their crops are taken at 256 px where ssltk's are taken at 32 px
and then upsampled. Features are the 4096-d fc7 activations.
"""
from __future__ import annotations

import math
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from ..interfaces import Backbone

LAYOUTS = {"big": (96, 256, 384, 384, 256), "small": (64, 192, 384, 256, 256)}


def _conv(c_in: int, c_out: int, k: int, s: int, p: int, bn: bool) -> list:
    layers = [nn.Conv2d(c_in, c_out, k, s, p, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    return layers + [nn.ReLU(inplace=True)]


class AlexNet(Backbone):
    """conv1-conv5 (96-256-384-384-256, SeLa's "big" layout, or torchvision's "small") then fc6 and fc7 (4096)."""

    min_size = 32  # the stride-4 first convolution and three stride-2 max-pools

    def __init__(self, in_channels: int = 3, size: str = "big", batch_norm: bool = True, fc_batch_norm: bool = False,
                 dropout: float = 0.5, input_size: int = 224, weights: Optional[str] = None):
        super().__init__()
        if size not in LAYOUTS:
            raise ValueError(f"unknown AlexNet size {size!r}; use big (SeLa's default) or small (torchvision's)")
        c1, c2, c3, c4, c5 = LAYOUTS[size]
        self.input_size = input_size
        self.features = nn.Sequential(
            *_conv(in_channels, c1, 11, 4, 2, batch_norm), nn.MaxPool2d(3, 2),
            *_conv(c1, c2, 5, 1, 2, batch_norm), nn.MaxPool2d(3, 2),
            *_conv(c2, c3, 3, 1, 1, batch_norm),
            *_conv(c3, c4, 3, 1, 1, batch_norm),
            *_conv(c4, c5, 3, 1, 1, batch_norm), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        fc_norm = (lambda n: [nn.BatchNorm1d(n)]) if fc_batch_norm else (lambda n: [])
        drop = (lambda: [nn.Dropout(dropout)]) if dropout > 0 else (lambda: [])
        self.classifier = nn.Sequential(
            *drop(), nn.Linear(c5 * 6 * 6, 4096), *fc_norm(4096), nn.ReLU(inplace=True),
            *drop(), nn.Linear(4096, 4096), *fc_norm(4096), nn.ReLU(inplace=True),
        )
        self.num_features = 4096
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)
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
