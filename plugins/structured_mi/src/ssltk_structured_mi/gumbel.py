"""Gumbel-softmax relaxation (Jang et al. 2017; Maddison et al. 2017), as used for the relation tensor in paper 003,
appendix C: a_ij = softmax((h_ij + g) / tau) with g ~ Gumbel(0, 1)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def gumbel_softmax(logits: Tensor, tau: float = 0.5, hard: bool = False,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """Samples over the last dimension. Soft samples sum to one; ``hard`` returns one-hot samples whose gradient is
    the soft sample's (straight-through estimator)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1.0 - 1e-7)))
    soft = torch.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return soft
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    return one_hot - soft.detach() + soft
