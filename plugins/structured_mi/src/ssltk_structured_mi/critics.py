"""The critics T_beta and T_omega and the NWJ lower bound of paper 003, section 2.1, eq. 3."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssltk.heads import RelationHead


class ZCritic(nn.Module):
    """T_beta(x, z') = f_delta(g_theta(x), z'): the relation MLP of Patacchiola & Storkey (2020) on the concatenated
    pair, giving one scalar per pair (paper 003, section 2.1 and Figure 1)."""

    def __init__(self, in_dim: int, hidden_dim: int = 256):
        super().__init__()
        self.f = RelationHead(2 * in_dim, hidden_dim)

    def forward(self, za: Tensor, zb: Tensor) -> Tensor:
        return self.f(torch.cat([za, zb], dim=1))


class RelationCritic(nn.Module):
    """T_omega(x, a') = sum_k Flatten(h(x)[:, :, k])^T w_k Flatten(a'[:, :, k]) with w in R^{S^2 x S^2 x K}
    (paper 003, section 2.1): a bilinear form per relation type between the two samples' relation tensors."""

    def __init__(self, entities: int, relation_types: int = 2, init_std: float = 0.01):
        super().__init__()
        n = entities * entities
        self.w = nn.Parameter(torch.randn(n, n, relation_types) * init_std)

    def forward(self, ha: Tensor, ab: Tensor) -> Tensor:
        """``ha`` and ``ab``: relation tensors (P, S, S, K) of the pairs' first and second members -> (P,)."""
        p = ha.shape[0]
        return torch.einsum("pik,ijk,pjk->p", ha.reshape(p, -1, ha.shape[-1]), self.w,
                            ab.reshape(p, -1, ab.shape[-1]))


def nwj_bound(t_pos: Tensor, t_neg: Tensor, clamp: float = 30.0) -> Tensor:
    """NWJ (Nguyen, Wainwright & Jordan 2010) lower bound on mutual information, the form of eq. 3:
    E_pos[T] - (1/e) E_neg[exp(T)]. Negative scores are clamped at ``clamp`` before the exponential so one outlier
    cannot overflow float32; the bound is unchanged wherever T stays below it."""
    return t_pos.mean() - torch.exp(t_neg.clamp(max=clamp)).mean() / math.e
