"""SimSiam (Chen & He, CVPR 2021, Algorithm 1) as a minimal third-party objective."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

import ssltk


class SimSiam(ssltk.Objective):
    """Symmetrised negative cosine between predictor(p1) and stop-gradient(z2), and vice versa (eq. 1-2)."""

    def __init__(self, in_dim: int, proj_dim: int = 128, pred_dim: int = 32):
        super().__init__(in_dim)
        self.projector = nn.Sequential(nn.Linear(in_dim, proj_dim), nn.BatchNorm1d(proj_dim), nn.ReLU(),
                                       nn.Linear(proj_dim, proj_dim), nn.BatchNorm1d(proj_dim))
        self.predictor = nn.Sequential(nn.Linear(proj_dim, pred_dim), nn.BatchNorm1d(pred_dim), nn.ReLU(),
                                       nn.Linear(pred_dim, proj_dim))

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        z1, z2 = self.projector(backbone(batch.view(0))), self.projector(backbone(batch.view(1)))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        loss = -(F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean()) / 2
        return ssltk.ObjectiveOutput(loss)
