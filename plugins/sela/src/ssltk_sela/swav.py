"""SwAV, swapping assignments between views (Caron et al., NeurIPS 2020): SeLa's equipartitioned assignment solved
online, per batch, with this plugin's Sinkhorn (:func:`ssltk_sela.sinkhorn.sinkhorn_codes`).

Each view's l2-normalised projection z is scored against K unit-norm prototypes C; the codes of the two global views
are Sinkhorn's soft assignments (epsilon 0.05, 3 iterations, eq. 3); every other view predicts them through
softmax(z^T C / 0.1) (eq. 1-2). The prototypes are renormalised before every step and take no step during the first
epoch (the authors' ``freeze_prototypes_niters``, 313 iterations of one ImageNet epoch at batch 4096). With small
batches a queue of the last ``queue_length`` global-view projections, started at epoch ``queue_start_epoch``, joins
the batch in the Sinkhorn step once it is full (section 4 and appendix: 3,840 from epoch 15 at batch 256).

Defaults are the paper's (appendix A): projection MLP 2048 hidden (BatchNorm, ReLU) to 128, 3,000 prototypes,
LARS with weight decay 1e-6, the learning rate 4.8 of batch 4096 scaled linearly (0.15 at batch 128), 10 warmup
epochs then cosine (to 0, where the authors stop at a thousandth). Multi-crop 2 x (scale 0.14-1) + 6 x (0.05-0.14)
at 96/224 of the side (16 px at 32 px); colour jitter of strength 1 (0.8, 0.8, 0.8, 0.2) p 0.8, grayscale 0.2, blur
0.5 on every view, no solarisation; at 32 px blur is dropped (:func:`ssltk.crop_groups`).

Small scale: on Conv-4, CIFAR-10 at batch 64 (the reduced protocol of RESULTS.md) epsilon 0.05 collapses to uniform
predictions within 3 epochs (the loss reaches ln K, for 30 to 3,000 prototypes), and ``--objective.epsilon 0.02``,
whose codes are sharper, trains (39.4 linear against 29.0 for random weights).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import ssltk
from ssltk.distributed import is_distributed

from .sinkhorn import sinkhorn_codes
from .swav_loss import swav_loss


class SwAVObjective(ssltk.Objective):
    """SwAV: predict one view's Sinkhorn code of the prototypes from the other views (Caron et al. 2020)."""

    trainer_defaults = {"optimizer": "lars", "lr": 0.15, "batch_size": 128, "weight_decay": 1e-6,
                        "schedule": "cosine", "warmup_epochs": 10.0}

    def __init__(self, in_dim: int, hidden_dim: int = 2048, dim: int = 128, prototypes: int = 3000,
                 num_local: int = 6, temperature: float = 0.1, epsilon: float = 0.05, sinkhorn_iterations: int = 3,
                 queue_length: int = 3840, queue_start_epoch: int = 15, freeze_prototypes_epochs: int = 1):
        super().__init__(in_dim)
        self.projector = ssltk.projection_mlp([in_dim, hidden_dim, dim])
        self.prototypes = nn.Linear(dim, prototypes, bias=False)
        self.num_local, self.temperature, self.epsilon, self.iterations = num_local, temperature, epsilon, \
            sinkhorn_iterations
        self.queue_start, self.freeze_epochs = queue_start_epoch, freeze_prototypes_epochs
        self.register_buffer("queue", torch.zeros(2, queue_length, dim))
        self.steps_per_epoch, self.epoch = 1, 0

    def view_groups(self, spec):
        return ssltk.crop_groups(spec, global_scale=(0.14, 1.0), jitter=(0.8, 0.8, 0.8, 0.2), global_blur=(0.5, 0.5),
                           global_solarize=(0.0, 0.0), num_local=self.num_local, local_scale=(0.05, 0.14))

    def on_fit_start(self, ctx: ssltk.FitContext) -> None:
        self.steps_per_epoch = ctx.steps_per_epoch

    def param_groups(self, backbone: nn.Module):
        return ssltk.no_decay_groups(backbone, self.projector, self.prototypes)

    @torch.no_grad()
    def on_step_start(self, step: int, progress: float) -> None:
        self.epoch = step // self.steps_per_epoch
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def forward(self, batch: ssltk.ViewBatch, backbone: nn.Module) -> ssltk.ObjectiveOutput:
        b = batch.batch_size
        feats = [backbone(batch.same_size_views(2))] + ([backbone(batch.group(2))] if batch.num_groups > 2 else [])
        z = F.normalize(self.projector(torch.cat(feats)), dim=1)
        scores = self.prototypes(z)
        codes = [self._codes(scores[i * b:(i + 1) * b], z[i * b:(i + 1) * b].detach(), i) for i in range(2)]
        return ssltk.ObjectiveOutput(swav_loss(scores.split(b), codes, self.temperature))

    @torch.no_grad()
    def _codes(self, scores: torch.Tensor, z: torch.Tensor, i: int) -> torch.Tensor:
        """Sinkhorn's codes of global view ``i``, with the queue's projections in the problem once it is full;
        then the batch's projections enter the queue (from ``queue_start_epoch`` on)."""
        use_queue = self.queue.shape[1] > 0 and bool(self.queue[i, -1].any())
        extra = self.prototypes(self.queue[i]) if use_queue else scores[:0]
        q = sinkhorn_codes(torch.cat([extra, scores.detach()]), self.epsilon, self.iterations,
                           is_distributed())[-scores.shape[0]:]
        if self.training and self.queue.shape[1] > 0 and self.epoch >= self.queue_start:
            self.queue[i] = torch.cat([z, self.queue[i]])[:self.queue.shape[1]]
        return q

    def before_optimizer_step(self, backbone: nn.Module, step: int) -> None:
        if step < self.freeze_epochs * self.steps_per_epoch:
            self.prototypes.weight.grad = None
