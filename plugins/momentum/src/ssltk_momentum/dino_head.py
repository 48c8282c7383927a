"""DINO's projection head (Caron et al. 2021, section 3.1 and appendix): a 3-layer MLP (hidden 2048, GELU, no
BatchNorm), a 256-d bottleneck, l2 normalisation, and a weight-normalised linear layer of K outputs whose norm is
fixed to 1 (the authors' ``norm_last_layer``): the output is the dot product with unit-norm prototypes."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.GELU(), nn.Linear(hidden_dim, bottleneck_dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):  # the authors' truncated-normal initialisation
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        return F.linear(x, F.normalize(self.last_layer.weight, dim=1))
