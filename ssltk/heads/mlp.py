"""MLP heads: the relation module of paper 002 (section 3.3) and the projection MLP shape shared by baselines."""
from __future__ import annotations

from typing import Sequence

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


def projection_mlp(dims: Sequence[int], last_bn: bool = False, last_bn_affine: bool = True) -> nn.Sequential:
    """Linear -> BatchNorm1d -> ReLU between the widths ``dims`` (in, hidden..., out), a plain Linear last: the
    projectors and predictors of SimCLR v2, BYOL (section 3.3), MoCo v3 (section 4, with ``last_bn`` and no affine
    parameters on it), Barlow Twins and VICReg. Hidden linear layers have no bias, since BatchNorm follows them."""
    if len(dims) < 2:
        raise ValueError(f"an MLP needs at least an input and an output width, got {list(dims)}")
    layers = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == len(dims) - 2
        layers.append(nn.Linear(a, b, bias=last and not last_bn))
        if not last:
            layers += [nn.BatchNorm1d(b), nn.ReLU(inplace=True)]
        elif last_bn:
            layers.append(nn.BatchNorm1d(b, affine=last_bn_affine))
    return nn.Sequential(*layers)
