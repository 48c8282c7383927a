"""RotationNet (Gidaris et al. 2018) as in the relational-reasoning benchmark (paper 000, appendix A.5 and B.6).

Each image is expanded into its 0/90/180/270 degree rotations and Linear(D, 4) predicts the rotation with
cross-entropy; Adam 1e-3. With ``k > 4`` (a multiple of 4) it is the variant of appendix B.6: K augmented views
(cropped with padding and flipped) whose rotation labels stay coherent, view k rotated by (k mod 4) x 90 degrees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltk import DataSpec, Objective, ObjectiveOutput, ViewBatch
from ssltk.data.recipes import RotationAugment


class RotationObjective(Objective):
    """Predict which of four rotations was applied (Gidaris et al. 2018; paper 000, A.5 and B.6)."""

    def __init__(self, in_dim: int, k: int = 4):
        super().__init__(in_dim)
        if k < 4 or k % 4:
            raise ValueError(f"k must be a positive multiple of 4 (one view per rotation), got {k}")
        self.k = k
        self.classifier = nn.Linear(in_dim, 4)

    @property
    def num_views(self) -> int:
        return self.k

    def augmentation(self, spec: DataSpec):
        return RotationAugment(base="none" if self.k == 4 else "crop_flip").configure(spec)

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        logits = self.classifier(backbone(batch.views))
        b = batch.batch_size
        target = (torch.arange(batch.num_views, device=logits.device) % 4).repeat_interleave(b)
        loss = F.cross_entropy(logits, target)
        acc = (logits.detach().argmax(1) == target).float().mean() * 100
        return ObjectiveOutput(loss, {"rot_acc": acc})
