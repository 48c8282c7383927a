"""DINO's loss (Caron et al. 2021, eq. 1 and 2, Algorithm 1): cross-entropy between the centred, sharpened teacher
distribution of each global view and the student distribution of every other view, and the centre's update."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def dino_loss(student: Sequence[Tensor], teacher: Sequence[Tensor], center: Tensor, student_temp: float,
              teacher_temp: float) -> Tensor:
    """min H(P_t(x), P_s(x')) summed over the pairs of a global view x (teacher, ``teacher``) and any other view
    x' != x (student, ``student``: the global views first, in the same order, then the local ones), averaged over
    pairs and samples. P_t = softmax((g_t - C) / tau_t) without gradient; P_s = softmax(g_s / tau_s)."""
    targets = [torch.softmax((t.detach().float() - center) / teacher_temp, dim=-1) for t in teacher]
    logp = [torch.log_softmax(s.float() / student_temp, dim=-1) for s in student]
    total, pairs = 0.0, 0
    for i, q in enumerate(targets):
        for v, lp in enumerate(logp):
            if v == i:  # a view is not its own target
                continue
            total = total + (-q * lp).sum(-1).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def updated_center(center: Tensor, teacher: Sequence[Tensor], momentum: float, mean=None) -> Tensor:
    """C <- m C + (1 - m) mean of the teacher outputs over the batch (eq. 4); ``mean`` averages over processes."""
    batch_center = torch.cat([t.float() for t in teacher]).mean(0, keepdim=True)
    if mean is not None:
        batch_center = mean(batch_center)
    return center * momentum + batch_center * (1 - momentum)
