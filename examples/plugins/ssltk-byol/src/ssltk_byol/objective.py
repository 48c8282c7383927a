"""BYOL, Bootstrap Your Own Latent (Grill et al., NeurIPS 2020), using only ssltk's public API: an objective, a
momentum encoder for the target network, parameter groups, and the hook after each optimizer step."""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn

import ssltk


def mlp(in_dim: int, hidden: int, out: int) -> nn.Sequential:
    """The projector and predictor of section 3.3: Linear -> BatchNorm -> ReLU -> Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


def regression_loss(p, z):
    """Eq. 2: the squared distance of the l2-normalised prediction and target, 2 - 2 cos(p, z), per sample."""
    return 2 - 2 * F.cosine_similarity(p, z.detach(), dim=-1)


class BYOL(ssltk.Objective):
    """BYOL: an online network (backbone, projector, predictor) predicts the projection that a momentum target
    network (backbone and projector, an exponential average of the online ones) gives for the other view; the loss
    is symmetrised over the two views (eq. 2, L + L~) and the target follows tau = 1 - (1 - tau_base)(cos(pi k/K)
    + 1)/2 from 0.996 to 1 (section 3.2).

    Defaults are the paper's: 4096 hidden units, 256-d projections, LARS with no weight decay and no trust ratio on
    biases and BatchNorm, weight decay 1.5e-6, lr 0.2 x batch/256, cosine decay after a warmup. Differences: one
    epoch of warmup rather than 10 of 1000 (short runs), and the contrastive recipe of the engine (crop, flip,
    colour jitter, grayscale) for both views, without BYOL's blur and solarisation, which 32 px images do not use in
    the CIFAR benchmarks of lightly and solo-learn either.
    """

    trainer_defaults = {"optimizer": "lars", "lr": 0.1, "batch_size": 128, "weight_decay": 1.5e-6,
                        "schedule": "cosine", "warmup_epochs": 1.0}

    def __init__(self, in_dim: int, hidden_dim: int = 4096, proj_dim: int = 256, base_momentum: float = 0.996):
        super().__init__(in_dim)
        self.projector = mlp(in_dim, hidden_dim, proj_dim)
        self.predictor = mlp(proj_dim, hidden_dim, proj_dim)
        self.base_momentum = base_momentum

    def setup(self, backbone: nn.Module, spec: ssltk.DataSpec) -> None:
        # the target starts as a copy of the online network (section 3.2) and is never optimised
        self.target_backbone = ssltk.MomentumEncoder(backbone, self.base_momentum)
        self.target_projector = ssltk.MomentumEncoder(self.projector, self.base_momentum)

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.projector, self.predictor)

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        p1, p2 = self.predictor(self.projector(backbone(batch.views))).chunk(2)
        z1, z2 = self.target_projector(self.target_backbone(batch.views)).chunk(2)
        loss = (regression_loss(p1, z2) + regression_loss(p2, z1)).mean()
        return ssltk.ObjectiveOutput(loss)

    def after_optimizer_step(self, backbone: nn.Module, step: int, progress: float) -> None:
        self.target_backbone.update(backbone, progress)
        self.target_projector.update(self.projector, progress)
