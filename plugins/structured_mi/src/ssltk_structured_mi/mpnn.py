"""m_eta: the two-layer message-passing network of paper 003, appendix C, after the NRI encoder (Kipf et al. 2018).

On the complete directed graph over S entities (no self-loops):

    h_i^1      = m_emb(z_i)
    h_ij^1     = m_e^1([h_i^1, h_j^1])                 (node -> edge, kept as a skip connection)
    h_i^2      = m_v^1(sum_{j != i} h_ji^1 / S)        (edge -> node: incoming edges, divided by the node count)
    h_ij^2     = m_e^2([h_i^2, h_j^2, h_ij^1])
    logits_ij  = Linear(h_ij^2) in R^K

Each MLP is fc -> ELU -> dropout -> fc -> ELU -> BatchNorm, as in the NRI code
(shared/reference/implementation-notes.md).
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class NRIMLP(nn.Module):
    """fc -> ELU -> dropout -> fc -> ELU -> BatchNorm over the last dimension."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, dropout: float = 0.0):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(in_dim, hidden), nn.Linear(hidden, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.bn = nn.BatchNorm1d(out_dim)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_normal_(fc.weight)
            nn.init.constant_(fc.bias, 0.1)

    def _tail(self, pre: Tensor) -> Tensor:
        shape = pre.shape
        x = F.elu(self.fc2(self.dropout(F.elu(pre.reshape(-1, shape[-1])))))
        return self.bn(x).reshape(*shape[:-1], -1)

    def forward(self, x: Tensor) -> Tensor:
        return self._tail(self.fc1(x))

    def forward_edges(self, nodes: Tensor, send: Tensor, recv: Tensor, extra: Optional[Tensor] = None) -> Tensor:
        """``forward(cat([nodes[:, send], nodes[:, recv], extra], -1))`` without building the concatenation: the
        first layer is linear, so it is applied to the S nodes once and its results gathered for the S(S-1) edges,
        which cuts the cost of that layer by a factor of about S - 1."""
        h = nodes.shape[-1]
        w = self.fc1.weight
        pre = (nodes @ w[:, :h].T)[:, send] + (nodes @ w[:, h : 2 * h].T)[:, recv] + self.fc1.bias
        if extra is not None:
            pre = pre + extra @ w[:, 2 * h :].T
        return self._tail(pre)


def complete_graph(s: int, device=None) -> Tuple[Tensor, Tensor]:
    """Sender and receiver node indices of the S*(S-1) directed edges, in row-major (i, j), i != j order."""
    send, recv = (~torch.eye(s, dtype=torch.bool, device=device)).nonzero(as_tuple=True)
    return send, recv


class MPNN(nn.Module):
    """Relation logits (B, S, S, K) from entities z (B, S, D); the diagonal (self-relations) is zero."""

    def __init__(self, entities: int, dim: int, relation_types: int = 2, hidden: int = 256, dropout: float = 0.0):
        super().__init__()
        self.s, self.k = entities, relation_types
        self.emb = NRIMLP(dim, hidden, hidden, dropout)
        self.edge1 = NRIMLP(2 * hidden, hidden, hidden, dropout)
        self.node1 = NRIMLP(hidden, hidden, hidden, dropout)
        self.edge2 = NRIMLP(3 * hidden, hidden, hidden, dropout)
        self.out = nn.Linear(hidden, relation_types)
        send, recv = complete_graph(entities)
        self.register_buffer("send", send, persistent=False)
        self.register_buffer("recv", recv, persistent=False)

    def forward(self, z: Tensor) -> Tensor:
        b, s, _ = z.shape
        h = self.emb(z)  # (B, S, H)
        e1 = self.edge1.forward_edges(h, self.send, self.recv)  # (B, E, H)
        incoming = torch.zeros_like(h).index_add_(1, self.recv, e1) / s
        h2 = self.node1(incoming)
        e2 = self.edge2.forward_edges(h2, self.send, self.recv, e1)
        logits = self.out(e2)  # (B, E, K)
        full = logits.new_zeros(b, s, s, self.k)
        full[:, self.send, self.recv] = logits
        return full
