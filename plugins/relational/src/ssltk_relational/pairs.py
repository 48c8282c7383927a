"""Positive and negative pairs of relational reasoning, built from index tensors (paper 002, section 3.1, eq. 3-4;
paper 000, Algorithm 1 and appendix D).

For every pair of views i < j of a mini-batch of M images, positives couple the two views of the same image
(intra-reasoning) and negatives couple view i of image n with view j of another image (inter-reasoning). The
"shuffling without collisions" is the authors' roll: the negative partner of n is (n - s) mod M, where the shift s
starts at 1, grows by one after each view pair and wraps back to 1 before reaching M, so it is never the identity.
That yields M * K * (K - 1) pairs, half positive (eq. 4). The indices depend only on (K, M), so they are built once
and cached; a training step is then two gathers and one aggregation, with no Python loop over view pairs.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor

AGGREGATIONS = ("cat", "sum", "mean", "max")


@lru_cache(maxsize=32)
def _pairs_cpu(k: int, m: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    if k < 2:
        raise ValueError(f"relational reasoning needs at least 2 views, got K={k}")
    if m < 2:
        raise ValueError(f"relational reasoning needs at least 2 images per batch for negatives, got M={m}")
    vi, vj = torch.triu_indices(k, k, offset=1)  # view pairs (i, j), i < j, in the authors' loop order
    n_pairs = vi.numel()
    shifts = torch.arange(n_pairs) % (m - 1) + 1  # 1, 2, ..., M-1, 1, 2, ...
    n = torch.arange(m)
    a = vi[:, None] * m + n  # (pairs, M)
    pos_b = vj[:, None] * m + n
    neg_b = vj[:, None] * m + (n[None, :] - shifts[:, None]) % m
    idx_a = torch.stack([a, a], 1).reshape(-1)  # per view pair: M positives, then M negatives
    idx_b = torch.stack([pos_b, neg_b], 1).reshape(-1)
    targets = torch.stack([torch.ones(n_pairs, m), torch.zeros(n_pairs, m)], 1).reshape(-1)
    return idx_a, idx_b, targets, vj


def relation_pairs(k: int, m: int, device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Indices into the view-major features (K*M, D) of the first and second member of each pair, and targets."""
    idx_a, idx_b, targets, _ = _pairs_cpu(k, m)
    return idx_a.to(device), idx_b.to(device), targets.to(device)


def same_class_partners(labels: Tensor, k: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """For the semi-supervised variant (paper 000, appendix A.7): for each view pair and image n whose label is
    known, a random other image of the batch with the same label (n itself where there is none or no label).
    Returns (pairs, M) image indices."""
    m = labels.numel()
    n_pairs = k * (k - 1) // 2
    known = labels >= 0
    same = (labels[:, None] == labels[None, :]) & known[:, None] & known[None, :]
    same.fill_diagonal_(False)
    scores = torch.rand(n_pairs, m, m, generator=generator, device=labels.device)
    scores = scores.masked_fill(~same, -1.0)
    best = scores.argmax(-1)
    has = same.any(1)
    return torch.where(has[None, :], best, torch.arange(m, device=labels.device)[None, :])


def aggregate(za: Tensor, zb: Tensor, how: str = "cat") -> Tensor:
    """The aggregation functions of eq. 5 (``mean`` is the one of appendix B.8, Table 13)."""
    if how == "cat":
        return torch.cat([za, zb], dim=1)
    if how == "sum":
        return za + zb
    if how == "mean":
        return (za + zb) * 0.5
    if how == "max":
        return torch.maximum(za, zb)
    raise ValueError(f"unknown aggregation {how!r}; use one of {AGGREGATIONS}")
