"""MLP heads: the relation module of paper 002 (section 3.3) and the projection MLP shape shared by baselines."""
from __future__ import annotations

from torch import Tensor, nn

from ..interfaces import Head


class MLPHead(Head):
    """Linear(in, hidden) -> BatchNorm1d -> LeakyReLU -> Linear(hidden, out): the head shape of paper 000 A.5."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 256):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.LeakyReLU(),
                                 nn.Linear(hidden_dim, out_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class RelationHead(MLPHead):
    """The relation module r_phi (paper 002, section 3.3 and eq. 6): 256 hidden units, one logit per pair."""

    def __init__(self, in_dim: int, hidden_dim: int = 256):
        super().__init__(in_dim, 1, hidden_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)
