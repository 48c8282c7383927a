"""SwAV's swapped prediction loss (Caron et al. 2020, eq. 1 and 2, and section 3.2 for multi-crop): the code of
each global view is predicted from every other view's softmax over the prototype scores."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def swav_loss(scores: Sequence[Tensor], codes: Sequence[Tensor], temperature: float) -> Tensor:
    """Mean over the coded views i of the mean over views v != i of -sum_k q_i log p_v, with p_v =
    softmax(z_v^T C / tau) (eq. 2); ``scores`` holds every view's z^T C (global views first, in the order of
    ``codes``), ``codes`` the Sinkhorn codes of the global views (no gradient)."""
    logp = [torch.log_softmax(s.float() / temperature, dim=1) for s in scores]
    total = 0.0
    for i, q in enumerate(codes):
        others = [-(q.detach() * lp).sum(1).mean() for v, lp in enumerate(logp) if v != i]
        total = total + sum(others) / len(others)
    return total / len(codes)
