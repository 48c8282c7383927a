"""DINO, self-distillation with no labels (Caron et al., ICCV 2021), with multi-crop.

The student (backbone and :class:`~ssltk_momentum.dino_head.DINOHead`) sees every view; the teacher, an exponential
average of the student (momentum 0.996 raised to 1 on a cosine, section 3.1), sees the two global views only. Loss:
eq. 2, the cross-entropy of the centred and sharpened teacher distribution against the student's for every pair of
different views; the centre follows the teacher's batch mean with momentum 0.9 (eq. 4). The teacher temperature
warms up linearly from 0.04 to 0.07 over the first 30 epochs, a value per epoch as in the authors' code; the student
temperature is 0.1. The head's last layer takes no step during the first epoch (the authors' ``freeze_last_layer``).

Defaults are the paper's (section 3 and appendix): K = 65,536 outputs, AdamW with learning rate 0.0005 x batch / 256
(0.00025 at batch 128), 10 warmup epochs then cosine (to 0, where the authors stop at 1e-6), weight decay on a cosine
from 0.04 to 0.4 (``--trainer.weight_decay_end``), gradient clipping at 3.0, no decay on biases and normalisation
parameters. Multi-crop: two global views from crop scale 0.4-1 (blur 1.0 / 0.1, solarisation 0 / 0.2) and
``num_local`` = 8 local views from 0.05-0.4 at 96/224 of the side (16 px at 32 px; blur 0.5), the authors' defaults
(the paper's best ViT-S/16 number uses 10); at 32 px blur is dropped (:func:`ssltk.crop_groups`).
"""
from __future__ import annotations

import torch
from torch import nn

import ssltk
from ssltk.distributed import all_reduce_grad, is_distributed, world

from .dino_head import DINOHead
from .dino_loss import dino_loss, updated_center


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    return all_reduce_grad(x) / world()[1]


class DINOObjective(ssltk.Objective):
    """DINO: a student matches a momentum teacher's centred, sharpened outputs across views (Caron et al. 2021)."""

    trainer_defaults = {"optimizer": "adamw", "lr": 0.00025, "batch_size": 128, "weight_decay": 0.04,
                        "weight_decay_end": 0.4, "schedule": "cosine", "warmup_epochs": 10.0, "grad_clip": 3.0}

    def __init__(self, in_dim: int, out_dim: int = 65536, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 num_local: int = 8, student_temp: float = 0.1, teacher_temp: float = 0.07,
                 warmup_teacher_temp: float = 0.04, warmup_teacher_temp_epochs: int = 30,
                 center_momentum: float = 0.9, base_momentum: float = 0.996, freeze_last_layer_epochs: int = 1):
        super().__init__(in_dim)
        self.head = DINOHead(in_dim, out_dim, hidden_dim, bottleneck_dim)
        self.num_local, self.student_temp, self.center_momentum = num_local, student_temp, center_momentum
        self.temps = (warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs)
        self.base_momentum, self.freeze_epochs = base_momentum, freeze_last_layer_epochs
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.register_buffer("teacher_temp", torch.tensor(warmup_teacher_temp), persistent=False)
        self.steps_per_epoch = 1

    def view_groups(self, spec):
        return ssltk.crop_groups(spec, global_scale=(0.4, 1.0), num_local=self.num_local)

    def setup(self, backbone: nn.Module, spec: ssltk.DataSpec) -> None:
        self.teacher_backbone = ssltk.MomentumEncoder(backbone, self.base_momentum)
        self.teacher_head = ssltk.MomentumEncoder(self.head, self.base_momentum)

    def on_fit_start(self, ctx: ssltk.FitContext) -> None:
        self.steps_per_epoch = ctx.steps_per_epoch

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.head)

    def on_step_start(self, step: int, progress: float) -> None:
        start, end, warm = self.temps
        epoch = step // self.steps_per_epoch
        temp = start + (end - start) * epoch / (warm - 1) if epoch < warm and warm > 1 else end
        self.teacher_temp.fill_(temp)

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        b = batch.batch_size
        global_views = batch.same_size_views(2)
        feats = [backbone(global_views)] + ([backbone(batch.group(2))] if batch.num_groups > 2 else [])
        student = self.head(torch.cat(feats)).split(b)
        teacher = self.teacher_head(self.teacher_backbone(global_views)).split(b)
        loss = dino_loss(student, teacher, self.center, self.student_temp, self.teacher_temp)
        if self.training:
            self.center.copy_(updated_center(self.center, teacher, self.center_momentum,
                                             mean_over_ranks if is_distributed() else None))
        return ssltk.ObjectiveOutput(loss, {"teacher_temp": self.teacher_temp})

    def before_optimizer_step(self, backbone: nn.Module, step: int) -> None:
        if step < self.freeze_epochs * self.steps_per_epoch:
            self.head.last_layer.weight.grad = None

    def after_optimizer_step(self, backbone: nn.Module, step: int, progress: float) -> None:
        self.teacher_backbone.update(backbone, progress)
        self.teacher_head.update(self.head, progress)
