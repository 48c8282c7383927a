"""VICReg, variance-invariance-covariance regularisation (Bardes, Ponce & LeCun, ICLR 2022).

Two views through backbone and expander; the loss (eq. 6, :mod:`~ssltk_decorrelation.vicreg_loss`) is 25 x the
mean squared distance of the embeddings, plus 25 x a hinge keeping each dimension's standard deviation at 1, plus
1 x the squared off-diagonal covariances. Under torchrun the embeddings of every rank are gathered first, as the
authors' ``FullGatherLayer`` does, so the statistics are the global batch's.

Defaults are the paper's (section 4.1 and appendix): expander of three linear layers of 8192 units with BatchNorm
and ReLU between them, LARS, base learning rate 0.2 x batch / 256 (0.1 at batch 128), weight decay 1e-6 (none on
biases and BatchNorm), 10 warmup epochs then cosine. Views: the BYOL recipe (blur 1.0 / 0.1, solarisation
0 / 0.2, as the paper's appendix), blur dropped at 32 px (:func:`ssltk.crop_groups`). On small
backbones and CPUs a narrower expander (``--objective.proj_dim 2048``, solo-learn's CIFAR setting) is much cheaper.
"""
from __future__ import annotations

from torch import nn

import ssltk
from ssltk.distributed import all_gather_grad

from .vicreg_loss import vicreg_loss


class VICRegObjective(ssltk.Objective):
    """VICReg: invariance, variance and covariance terms on two views' embeddings (Bardes et al. 2022)."""

    trainer_defaults = {"optimizer": "lars", "lr": 0.1, "batch_size": 128, "weight_decay": 1e-6,
                        "schedule": "cosine", "warmup_epochs": 10.0}

    def __init__(self, in_dim: int, proj_dim: int = 8192, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                 cov_coeff: float = 1.0):
        super().__init__(in_dim)
        self.projector = ssltk.projection_mlp([in_dim, proj_dim, proj_dim, proj_dim])
        self.coeffs = (sim_coeff, std_coeff, cov_coeff)

    def view_groups(self, spec):
        return ssltk.crop_groups(spec)

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.projector)

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        z1, z2 = self.projector(backbone(batch.same_size_views())).chunk(2)
        return ssltk.ObjectiveOutput(vicreg_loss(all_gather_grad(z1), all_gather_grad(z2), *self.coeffs))
