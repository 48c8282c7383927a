"""BYOL's regression loss (Grill et al. 2020, eq. 2): the squared distance between the l2-normalised online
prediction and target projection, 2 - 2 cos(q, z'), symmetrised over the two views (eq. 2, L + L~)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def regression_loss(p: Tensor, z: Tensor) -> Tensor:
    """Per sample: ||p/||p|| - z/||z||||^2 = 2 - 2 cos(p, z); the target ``z`` gets no gradient (stop-gradient)."""
    return 2 - 2 * F.cosine_similarity(p.float(), z.detach().float(), dim=-1)


def byol_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """L + L~ averaged over the batch: view 1's prediction regresses view 2's target and the reverse."""
    return (regression_loss(p1, z2) + regression_loss(p2, z1)).mean()
