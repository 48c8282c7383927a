"""The structured mutual-information objective (Sansone 2022, paper 003, section 2.1)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor, nn

from ssltk import Objective, ObjectiveOutput, ViewBatch
from ssltk.errors import SsltkError
from ssltk.pairs import view_pairs

from .critics import RelationCritic, ZCritic, nwj_bound
from .gumbel import gumbel_softmax
from .mpnn import MPNN

VARIANTS = ("izx", "ixa", "ixaz")


class StructuredMI(Objective):
    """Structured mutual information: the NWJ lower bound of eq. 3 on I(X,Z) + I(X,A), maximised.

    The encoder output g_theta(x) is reshaped into z in R^{S x D}; the MPNN m_eta turns z into relation logits and a
    Gumbel-softmax into the relation tensor a (soft samples in training, hard straight-through ones in evaluation).
    Pairs come from K augmented views as in relational reasoning: positives are (x, x'), two views of one image, and
    negatives (x, x~), views of different images. The critic T_beta scores (g(x), z') with the relation MLP and the
    critic T_omega scores (h(x), a') with a bilinear form per relation type.

    Variants: ``izx`` maximises the I(X,Z) term only (the structure-free baseline of Table 1), ``ixa`` the I(X,A)
    term only, ``ixaz`` their sum (eq. 2-3). Defaults follow appendix E: K = 32 views, S = D = 8, 2 relation types;
    tau = 0.5 for the Gumbel-softmax (shared/reference/implementation-notes.md).

    Args:
        in_dim: backbone feature size; must equal entities * dim.
        variant: ``izx``, ``ixa`` or ``ixaz``.
        k: augmented views per image.
        entities: S, the rows of z.
        dim: D, the features of each entity.
        relation_types: K of the relation tensor (the paper uses 2, one of them "no relation").
        tau: Gumbel-softmax temperature.
        hidden_dim: hidden units of the T_beta MLP.
        mpnn_hidden: hidden units of the MPNN's MLPs.
        dropout: dropout inside the MPNN's MLPs.
    """

    def __init__(self, in_dim: int, variant: str = "ixaz", k: int = 32, entities: int = 8, dim: int = 8,
                 relation_types: int = 2, tau: float = 0.5, hidden_dim: int = 256, mpnn_hidden: int = 256,
                 dropout: float = 0.0):
        super().__init__(in_dim)
        if variant not in VARIANTS:
            raise SsltkError(f"unknown structured-mi variant {variant!r}; use one of {', '.join(VARIANTS)}")
        if in_dim != entities * dim:
            raise SsltkError(f"structured-mi reshapes the backbone's {in_dim} features into S x D = {entities} x {dim}"
                             f" = {entities * dim}; choose a backbone with {entities * dim} features or set "
                             "--objective.entities and --objective.dim so that S * D equals its feature size")
        if k < 2:
            raise SsltkError(f"structured-mi needs k >= 2 views, got {k}")
        self.variant, self.k, self.s, self.d, self.tau = variant, k, entities, dim, tau
        self.use_z = variant in ("izx", "ixaz")
        self.use_a = variant in ("ixa", "ixaz")
        self.z_critic = ZCritic(in_dim, hidden_dim) if self.use_z else None
        if self.use_a:
            self.mpnn = MPNN(entities, dim, relation_types, mpnn_hidden, dropout)
            self.a_critic = RelationCritic(entities, relation_types)
        self.register_buffer("off_diagonal", (~torch.eye(entities, dtype=torch.bool)).float()[None, :, :, None],
                             persistent=False)

    @property
    def num_views(self) -> int:
        return self.k

    def relations(self, z: Tensor) -> Tensor:
        """The relation tensor a (N, S, S, K) of flat encodings z (N, S*D); self-relations are zero."""
        logits = self.mpnn(z.view(-1, self.s, self.d))
        a = gumbel_softmax(logits, self.tau, hard=not self.training)
        return a * self.off_diagonal

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        z = backbone(batch.views)
        idx_a, idx_b, _ = view_pairs(batch.num_views, batch.batch_size, z.device)
        m = batch.batch_size

        def split(t: Tensor) -> Tuple[Tensor, Tensor]:
            # pairs come as M positives then M negatives per view pair (ssltk.pairs): slicing that layout gives
            # the elements a positive-target mask would, in the same order, with shapes known before the step
            # runs (a boolean mask's are data-dependent and stop torch.compile's full graph and CUDA graphs)
            t = t.reshape(-1, 2, m)
            return t[:, 0].reshape(-1), t[:, 1].reshape(-1)

        bound = z.new_zeros(())
        logs = {}
        if self.use_z:
            t = self.z_critic(z.index_select(0, idx_a), z.index_select(0, idx_b)).float()  # deterministic backward
            b_z = nwj_bound(*split(t))
            bound = bound + b_z
            logs["nwj_z"] = b_z.detach()
        if self.use_a:
            rel = self.relations(z)
            t = self.a_critic(rel.index_select(0, idx_a), rel.index_select(0, idx_b)).float()
            b_a = nwj_bound(*split(t))
            bound = bound + b_a
            logs["nwj_a"] = b_a.detach()
        return ObjectiveOutput(-bound, logs)
