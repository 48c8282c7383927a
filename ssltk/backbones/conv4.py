"""Conv-4 of the relational-reasoning benchmark (paper 000, appendix A.2; shared/reference/implementation-notes.md)."""
from __future__ import annotations

import math
from typing import Optional

from torch import Tensor, nn

from ..interfaces import Backbone


def _block(c_in: int, c_out: int, pool: nn.Module) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), pool)


class Conv4(Backbone):
    """Four conv3x3-BN-ReLU blocks with 8/16/32/64 channels; average pooling; 64 features.

    Weights follow the authors' initialisation: conv N(0, sqrt(2 / (k*k*C_out))), BN weight 1 and bias 0.
    """

    min_size = 8  # three 2x2 average pools before the global pool

    def __init__(self, in_channels: int = 3, weights: Optional[str] = None):
        super().__init__()
        self.features = nn.Sequential(
            _block(in_channels, 8, nn.AvgPool2d(2)),
            _block(8, 16, nn.AvgPool2d(2)),
            _block(16, 32, nn.AvgPool2d(2)),
            _block(32, 64, nn.Identity()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.num_features = 64
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.load_weights(weights)

    def probe_layers(self):
        return {f"block{i + 1}": m for i, m in enumerate(self.features)}

    def forward_features(self, x: Tensor) -> Tensor:
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.features(x)).flatten(1)
