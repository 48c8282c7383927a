"""Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny, ICML 2021).

Two views through backbone and projector; the loss (eq. 1-2, :mod:`~ssltk_decorrelation.barlow_twins_loss`) drives
the cross-correlation of the standardised embeddings to the identity, lambda = 0.0051 weighing redundancy reduction
against invariance. Under torchrun the embeddings of every rank are gathered first, so the statistics and C are the
global batch's, as the authors' synchronised BatchNorm and all-reduced C give.

Defaults are the paper's (section 4 and appendix): projector of three linear layers of 8192 units with BatchNorm and
ReLU between them, LARS, learning rate 0.2 per 256 images for the weights (0.1 at batch 128) and 0.0048 per 256 for
biases and BatchNorm parameters (``lr_scale`` 0.024), weight decay 1.5e-6 except on those, 10 warmup epochs then
cosine. Views: the BYOL recipe (blur 1.0 / 0.1, solarisation 0 / 0.2), blur dropped at 32 px
(:func:`ssltk.crop_groups`). On small backbones and CPUs a narrower projector (``--objective.proj_dim
2048``, solo-learn's CIFAR setting) costs a sixteenth of the paper's.
"""
from __future__ import annotations

from torch import nn

import ssltk
from ssltk.distributed import all_gather_grad

from .barlow_twins_loss import barlow_twins_loss


class BarlowTwinsObjective(ssltk.Objective):
    """Barlow Twins: the two views' cross-correlation matrix is pushed to the identity (Zbontar et al. 2021)."""

    trainer_defaults = {"optimizer": "lars", "lr": 0.1, "batch_size": 128, "weight_decay": 1.5e-6,
                        "schedule": "cosine", "warmup_epochs": 10.0}

    def __init__(self, in_dim: int, proj_dim: int = 8192, lambd: float = 0.0051, bias_lr_scale: float = 0.024):
        super().__init__(in_dim)
        self.projector = ssltk.projection_mlp([in_dim, proj_dim, proj_dim, proj_dim])
        self.lambd, self.bias_lr_scale = lambd, bias_lr_scale

    def view_groups(self, spec):
        return ssltk.crop_groups(spec)

    def param_groups(self, backbone: nn.Module):
        decay, no_decay = ssltk.no_decay_groups(backbone, self.projector)
        return [decay, dict(no_decay, lr_scale=self.bias_lr_scale)]

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        z1, z2 = self.projector(backbone(batch.same_size_views())).chunk(2)
        return ssltk.ObjectiveOutput(barlow_twins_loss(all_gather_grad(z1), all_gather_grad(z2), self.lambd))
