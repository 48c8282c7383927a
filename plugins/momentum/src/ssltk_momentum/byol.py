"""BYOL, Bootstrap Your Own Latent (Grill et al., NeurIPS 2020), as a shipped method.

The online network (backbone, projector, predictor) predicts the target network's projection of the other view; the
target (backbone and projector) is an exponential average of the online weights whose momentum follows
tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2 from 0.996 to 1 (section 3.2). Loss: eq. 2, symmetrised.

Defaults are the paper's (section 3.3 and appendix C): projector and predictor Linear(4096)-BN-ReLU-Linear(256),
LARS, base learning rate 0.2 x batch / 256, weight decay 1.5e-6 with biases and BatchNorm excluded, cosine decay
after 10 warmup epochs (of 1000: the warmup here is given in epochs too, and a run shorter than twice it warms up
over half of it). Views: the BYOL recipe (appendix B), crop scale 0.08-1, jitter (0.4, 0.4, 0.2, 0.1) p 0.8,
grayscale 0.2, blur 1.0 / 0.1 and solarisation 0 / 0.2 on the two views; at 32 px blur is dropped
(:func:`ssltk.crop_groups`). The example plugin ``examples/plugins/ssltk-byol`` stays the template
that shows how such a method is written against the public API; this one is the method users run.
"""
from __future__ import annotations

from torch import nn

import ssltk

from .byol_loss import byol_loss


class BYOLObjective(ssltk.Objective):
    """BYOL: an online predictor regresses a momentum target's projection of the other view (Grill et al. 2020)."""

    trainer_defaults = {"optimizer": "lars", "lr": 0.1, "batch_size": 128, "weight_decay": 1.5e-6,
                        "schedule": "cosine", "warmup_epochs": 10.0}

    def __init__(self, in_dim: int, hidden_dim: int = 4096, proj_dim: int = 256, base_momentum: float = 0.996):
        super().__init__(in_dim)
        self.projector = ssltk.projection_mlp([in_dim, hidden_dim, proj_dim])
        self.predictor = ssltk.projection_mlp([proj_dim, hidden_dim, proj_dim])
        self.base_momentum = base_momentum

    def view_groups(self, spec):
        return ssltk.crop_groups(spec)

    def setup(self, backbone: nn.Module, spec: ssltk.DataSpec) -> None:
        # the target starts as a copy of the online network (section 3.2) and is never optimised
        self.target_backbone = ssltk.MomentumEncoder(backbone, self.base_momentum)
        self.target_projector = ssltk.MomentumEncoder(self.projector, self.base_momentum)

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.projector, self.predictor)

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        views = batch.same_size_views()
        p1, p2 = self.predictor(self.projector(backbone(views))).chunk(2)
        z1, z2 = self.target_projector(self.target_backbone(views)).chunk(2)
        return ssltk.ObjectiveOutput(byol_loss(p1, p2, z1, z2))

    def after_optimizer_step(self, backbone: nn.Module, step: int, progress: float) -> None:
        self.target_backbone.update(backbone, progress)
        self.target_projector.update(self.projector, progress)
