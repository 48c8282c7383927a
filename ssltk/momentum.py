"""A momentum (EMA) copy of a module: the target network of BYOL (Grill et al. 2020, eq. 1 and section 3.2), MoCo's
key encoder and DINO's teacher, as a core utility that plugins use from :meth:`Objective.after_optimizer_step`.

The copy's parameters never require gradients, so the trainer's optimizer never sees them. It is a submodule of the
objective that owns it, so checkpoints save and restore it with the objective, and a resumed run continues the
same average. Only parameters are averaged; buffers (BatchNorm running statistics) follow the copy's own forward
passes, as in lightly's and solo-learn's momentum updaters. Under torchrun every rank updates from its own online
weights, which DDP keeps identical across ranks, and the buffers are broadcast from rank 0 with the model's at every
epoch end.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def cosine_momentum(progress: float, base: float = 0.996, final: float = 1.0) -> float:
    """BYOL's schedule: tau = 1 - (1 - tau_base) * (cos(pi * k / K) + 1) / 2, from ``base`` at the start to
    ``final`` at the end of training (``progress`` = k / K, the fraction of steps done)."""
    progress = min(max(progress, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class MomentumEncoder(nn.Module):
    """``module``'s exponential moving average: after each step, xi <- tau * xi + (1 - tau) * theta.

    Call :meth:`update` with the online module after every optimizer step; calling the encoder runs the averaged
    copy without building a graph (a target is never differentiated). ``base`` and ``final`` are the momentum
    schedule's end points (:func:`cosine_momentum`; BYOL: 0.996 -> 1).
    """

    def __init__(self, module: nn.Module, base: float = 0.996, final: float = 1.0):
        super().__init__()
        if not 0.0 <= base <= final <= 1.0:
            raise ValueError(f"momentum needs 0 <= base <= final <= 1, got {base} and {final}")
        self.base, self.final = base, final
        self.module = copy.deepcopy(module)
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module, progress: float) -> float:
        """Move the average towards ``online`` with the momentum of this point of training; returns tau."""
        tau = cosine_momentum(progress, self.base, self.final)
        mine, theirs = list(self.module.parameters()), list(online.parameters())
        if len(mine) != len(theirs):
            raise ValueError("the online module's parameters do not match the momentum copy's")
        torch._foreach_lerp_(mine, theirs, 1.0 - tau)  # xi + (1 - tau) * (theta - xi)
        return tau

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.module(*args, **kwargs)
