"""View-pair indices shared by pairwise objectives (relational reasoning, structured MI).

For every pair of views i < j of a mini-batch of M images, positives couple the two views of the same image and
negatives couple view i of image n with view j of another image. The "shuffling without collisions" is the authors'
roll (paper 000, Algorithm 1 and appendix D): the negative partner of n is (n - s) mod M, where the shift s starts
at 1, grows by one after each view pair and wraps back to 1 before reaching M, so it is never the identity. That
yields M * K * (K - 1) pairs, half positive (paper 002, eq. 4). The indices depend only on (K, M), so they are built
once and cached; a training step then gathers pairs with two index operations and no Python loop over view pairs.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Optional, Tuple

import torch
from torch import Tensor


def _pairs(k: int, m: int) -> Tuple[Tensor, Tensor, Tensor]:
    if k < 2:
        raise ValueError(f"pairs of views need at least 2 views, got K={k}")
    if m < 2:
        raise ValueError(f"negatives need at least 2 images per batch, got M={m}")
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
    return idx_a, idx_b, targets


_pairs_cached = lru_cache(maxsize=32)(_pairs)


def view_pairs(k: int, m: int, device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Indices into view-major features (K*M, ...) of the first and second member of each pair, and the targets
    (1 for positives, 0 for negatives)."""
    # under torch.compile the indices are built inside the graph (k and m are static there, so they are computed
    # once per compiled shape): the cache is a Python object that would break the graph
    idx_a, idx_b, targets = _pairs(k, m) if torch.compiler.is_compiling() else _pairs_cached(k, m)
    return idx_a.to(device), idx_b.to(device), targets.to(device)
