"""MoCo v3 (Chen, Xie & He, ICCV 2021), the ResNet variant.

The base encoder (backbone and projector) and a predictor make queries q; the momentum encoder (an exponential
average of backbone and projector, momentum 0.99 raised to 1 on a cosine, section 4 and the authors' ``--moco-m-cos``)
makes keys k; the loss is Algorithm 1's ctr(q1, k2) + ctr(q2, k1), with the keys of the whole global batch under
torchrun (the authors' ``concat_all_gather``).

Defaults are the paper's ResNet-50 recipe (section 4 and appendix): projector 2 layers and predictor 2 layers of
4096 hidden units, 256-d outputs, BatchNorm after every layer including the projector's last (without affine
parameters), temperature 1.0, LARS with base learning rate 0.6 x batch / 256 (0.3 at batch 128), weight decay 1e-6,
10 warmup epochs then cosine. Views: the BYOL recipe (blur 1.0 / 0.1, solarisation 0 / 0.2, crop scale 0.08-1);
at 32 px blur is dropped (:func:`ssltk.crop_groups`). The ViT variant (3-layer projector, temperature
0.2, AdamW, a frozen patch embedding) is not provided: ssltk's backbones here are convolutional.
"""
from __future__ import annotations

from typing import Tuple

from torch import Tensor, nn

import ssltk
from ssltk.distributed import all_gather_grad, is_distributed, world

from .infonce import mocov3_loss


def gather_keys(k: Tensor) -> Tuple[Tensor, int]:
    """Every rank's keys (rank-major) and where this rank's rows start: the negatives of the global batch."""
    return all_gather_grad(k), world()[0] * k.shape[0]


class MoCoV3Objective(ssltk.Objective):
    """MoCo v3: queries from a predictor contrast against momentum keys of the other view (Chen et al. 2021)."""

    trainer_defaults = {"optimizer": "lars", "lr": 0.3, "batch_size": 128, "weight_decay": 1e-6,
                        "schedule": "cosine", "warmup_epochs": 10.0}

    def __init__(self, in_dim: int, hidden_dim: int = 4096, dim: int = 256, temperature: float = 1.0,
                 base_momentum: float = 0.99):
        super().__init__(in_dim)
        if not temperature > 0:
            raise ssltk.SsltkError(f"--objective.temperature must be > 0, got {temperature!r}")
        self.temperature, self.base_momentum = temperature, base_momentum
        self.projector = ssltk.projection_mlp([in_dim, hidden_dim, dim], last_bn=True, last_bn_affine=False)
        self.predictor = ssltk.projection_mlp([dim, hidden_dim, dim])

    def view_groups(self, spec):
        return ssltk.crop_groups(spec)

    def setup(self, backbone: nn.Module, spec: ssltk.DataSpec) -> None:
        self.momentum_backbone = ssltk.MomentumEncoder(backbone, self.base_momentum)
        self.momentum_projector = ssltk.MomentumEncoder(self.projector, self.base_momentum)

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.projector, self.predictor)

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        views = batch.same_size_views()
        q1, q2 = self.predictor(self.projector(backbone(views))).chunk(2)
        k1, k2 = self.momentum_projector(self.momentum_backbone(views)).chunk(2)
        loss = mocov3_loss(q1, q2, k1, k2, self.temperature, gather_keys if is_distributed() else None)
        return ssltk.ObjectiveOutput(loss)

    def after_optimizer_step(self, backbone: nn.Module, step: int, progress: float) -> None:
        self.momentum_backbone.update(backbone, progress)
        self.momentum_projector.update(self.projector, progress)
