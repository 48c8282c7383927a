"""The supervised upper bound of the relational-reasoning benchmark (paper 000, appendix A.5 and B.6).

A linear classifier Linear(D, C) on the backbone, cross-entropy on the true labels, SGD lr 0.1 momentum 0.9 divided
by 10 at 50% and 75% of the epochs, random crop (padding 4) plus horizontal flip
(shared/reference/implementation-notes.md, "Baselines"). With ``k > 1`` it is the variant of appendix B.6: each
image contributes K augmented views, all carrying the image's label ("coherent labels").
"""
from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import nn

from ssltk import CropFlipAugment, DataSpec, Objective, ObjectiveOutput, ViewBatch


class SupervisedObjective(Objective):
    """Cross-entropy of Linear(D, C) on labelled views: the upper bound (paper 000, A.5; K views as in B.6)."""

    uses_labels = True
    trainer_defaults = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "schedule": "step"}

    def __init__(self, in_dim: int, num_classes: Optional[int] = None, k: int = 1):
        super().__init__(in_dim)
        if num_classes is None or num_classes < 2:
            raise ValueError(f"supervised needs num_classes >= 2 (the engine fills it from the data), "
                             f"got {num_classes}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k, self.num_classes = k, num_classes
        self.classifier = nn.Linear(in_dim, num_classes)

    @property
    def num_views(self) -> int:
        return self.k

    def augmentation(self, spec: DataSpec):
        return CropFlipAugment().configure(spec)

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        if batch.labels is None:
            raise ValueError("supervised needs labels in the batch")
        logits = self.classifier(backbone(batch.views))
        target = batch.labels.repeat(batch.num_views)  # view-major: view k of image n keeps image n's label
        loss = F.cross_entropy(logits, target)
        acc = (logits.detach().argmax(1) == target).float().mean() * 100
        return ObjectiveOutput(loss, {"train_acc": acc})
