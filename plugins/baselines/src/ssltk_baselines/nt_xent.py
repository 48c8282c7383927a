"""NT-Xent, SimCLR's loss (Chen et al. 2020, eq. 1), and the relational benchmark's mean-ratio variant of it.

For the 2M view-major projections of M images, view i's ratio is r_i = exp(s_i,pos / t) / sum_{k != i} exp(s_ik / t)
with s the cosine similarity: ``nt_xent`` is mean_i(-log r_i), ``mean_ratio`` is -log(mean_i r_i) (the authors'
``methods/simclr.py``, which produced the papers' SimCLR numbers; see :mod:`ssltk_baselines.simclr`).
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Gather = Callable[[Tensor], Tuple[Tensor, int]]

LOSSES = ("nt_xent", "mean_ratio")


def nt_xent(z: Tensor, num_views: int = 2, temperature: float = 0.5, gather: Optional[Gather] = None,
            reduction: str = "nt_xent") -> Tensor:
    """NT-Xent of view-major projections ``z`` ([view_1 batch; view_2 batch], 2M x d), eq. 1 of SimCLR.

    ``reduction``: ``nt_xent`` averages -log r_i over the views; ``mean_ratio`` is -log of the mean r_i (the
    relational benchmark's variant, see the module docstring). With ``gather`` the candidates are every process's
    views; this process's rows start at the returned offset (under ``mean_ratio`` the mean runs over this process's
    views)."""
    if reduction not in LOSSES:
        raise ValueError(f"unknown SimCLR loss {reduction!r}; use one of {', '.join(LOSSES)}")
    if num_views != 2:
        raise ValueError(f"NT-Xent pairs exactly two views per image, got {num_views}")
    z = F.normalize(z.float(), dim=1)
    n = z.shape[0]
    m = n // 2
    keys, offset = gather(z) if gather is not None else (z, 0)
    sim = z @ keys.T / temperature
    rows = torch.arange(n, device=z.device)
    sim[rows, rows + offset] = float("-inf")  # a view is not its own negative
    positive = (rows + m) % n + offset
    if reduction == "nt_xent":
        return F.cross_entropy(sim, positive)
    log_ratio = sim[rows, positive] - torch.logsumexp(sim, dim=1)
    return -(torch.logsumexp(log_ratio, dim=0) - math.log(n))
