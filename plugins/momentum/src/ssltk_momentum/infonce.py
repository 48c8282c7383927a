"""MoCo v3's contrastive loss (Chen, Xie & He 2021, Algorithm 1): InfoNCE of each query against the keys of the other
view, every other key in the (global) batch a negative, scaled by 2 tau, and symmetrised over the two views."""
from __future__ import annotations

from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

Gather = Callable[[Tensor], Tuple[Tensor, int]]


def infonce(q: Tensor, k: Tensor, temperature: float, gather: Optional[Gather] = None) -> Tensor:
    """ctr(q, k) of Algorithm 1: cross-entropy of q . k^T / tau (both l2-normalised) with the matching key as the
    positive, times 2 tau. ``gather`` returns every process's keys and where this process's rows start."""
    q = F.normalize(q.float(), dim=1)
    k = F.normalize(k.detach().float(), dim=1)
    keys, offset = gather(k) if gather is not None else (k, 0)
    logits = q @ keys.T / temperature
    labels = torch.arange(q.shape[0], device=q.device) + offset
    return F.cross_entropy(logits, labels) * (2 * temperature)


def mocov3_loss(q1: Tensor, q2: Tensor, k1: Tensor, k2: Tensor, temperature: float,
                gather: Optional[Gather] = None) -> Tensor:
    """ctr(q1, k2) + ctr(q2, k1): each view's query against the momentum keys of the other view."""
    return infonce(q1, k2, temperature, gather) + infonce(q2, k1, temperature, gather)
