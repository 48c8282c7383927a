"""SimCLR (Chen et al. 2020) as in the relational-reasoning benchmark (paper 000, appendix A.5).

Projection head Linear(D, 256) -> BatchNorm1d -> LeakyReLU -> Linear(256, 64); cosine similarity, temperature 0.5;
NT-Xent over the 2M views of a batch of M images: each view's positive is the other view of its image, its
negatives the 2M - 2 other views. Adam 1e-3, batch 128.

Two reductions of the per-view ratio r_i = exp(s_i,pos / t) / sum_{k != i} exp(s_ik / t) are offered:

- ``loss: nt_xent`` (the default): mean_i(-log r_i), eq. 1 of Chen et al. (2020), what users of SimCLR expect;
- ``loss: mean_ratio``: -log(mean_i r_i), the benchmark's own loss (authors' ``methods/simclr.py``), chosen there
  on purpose (their comment reports about 77% against 76% on CIFAR-10). The SimCLR numbers of paper 000/002 come
  from it, so the paper protocols (``ssltk reproduce``) use it. The authors subtract exp(1/t) from each row sum to
  drop the self-similarity (exact only when ||z|| > 0 up to their eps clamp); here the diagonal is masked exactly.

``gather`` is the extension point for negatives from other processes: a callable that takes this process's
(2M, d) normalised projections and returns (all projections, offset of this process's rows). Under torchrun,
``gather_negatives`` (on by default there) uses :func:`ssltk.distributed.all_gather_grad`, an all-gather whose
backward returns every rank's gradient to the rows' owner: each view then has the 2 * global batch - 2 negatives of
one process holding the global batch, and so does its gradient.
"""
from __future__ import annotations

from typing import Optional, Tuple

from torch import Tensor, nn

from ssltk import Objective, ObjectiveOutput, SsltkError, ViewBatch
from ssltk.distributed import all_gather_grad, is_distributed, world

from .nt_xent import LOSSES, Gather, nt_xent


def gather_across_ranks(z: Tensor) -> Tuple[Tensor, int]:
    """The ``gather`` of torchrun runs: every rank's projections (rank-major), and where this rank's rows start."""
    return all_gather_grad(z), world()[0] * z.shape[0]


class SimCLRObjective(Objective):
    """SimCLR: NT-Xent on two views through a projection MLP (paper 000, A.5; Chen et al. 2020)."""

    trainer_defaults = {"batch_size": 128}

    def __init__(self, in_dim: int, hidden: int = 256, out_dim: int = 64, temperature: float = 0.5,
                 gather_negatives: bool = True, loss: str = "nt_xent"):
        super().__init__(in_dim)
        if loss not in LOSSES:
            raise ValueError(f"unknown SimCLR loss {loss!r}; use one of {', '.join(LOSSES)}")
        if not temperature > 0:  # a similarity divided by 0 is NaN at the first step
            raise SsltkError(f"--objective.temperature must be > 0, got {temperature!r}")
        self.temperature, self.gather_negatives, self.loss = temperature, gather_negatives, loss
        self.projector = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU(),
                                       nn.Linear(hidden, out_dim))
        self.gather: Optional[Gather] = None

    @property
    def num_views(self) -> int:
        return 2

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        z = self.projector(backbone(batch.views))
        gather = self.gather
        if gather is None and self.gather_negatives and is_distributed():
            gather = gather_across_ranks
        loss = nt_xent(z, batch.num_views, self.temperature, gather, self.loss)
        return ObjectiveOutput(loss)
