"""The relational objective (paper 002, section 3 and eq. 1; paper 000, Algorithm 1 and appendix D)."""
from __future__ import annotations


import torch
from torch import Tensor, nn

from ssltk import FitContext, Objective, ObjectiveOutput, ViewBatch
from ssltk.distributed import all_gather_uneven, gather_view_major, is_distributed
from ssltk.errors import SsltkError
from ssltk.heads import MLPHead, RelationHead

from .loss import focal_bce_with_logits
from .pairs import AGGREGATIONS, aggregate, pair_same_class, relation_pairs, same_class_partners

HEADS = ("relation", "dot", "encoder_dot")


class RelationalObjective(Objective):
    """Self-supervised relational reasoning.

    K augmented views of a mini-batch go through the backbone; positives (two views of the same image) and negatives
    (views of different images, shuffled without collisions) are aggregated and scored by the relation module
    r_phi, trained with the focal BCE of eq. 7-8. Defaults are the paper's: K=32, concatenation, 256 hidden units,
    gamma=2 (section 4, "Implementation").

    Args:
        in_dim: backbone feature size (set by the engine).
        k: number of augmented views K per image.
        aggregation: ``cat`` (default), ``sum``, ``mean`` or ``max`` (eq. 5; appendix B.8).
        head: ``relation`` (the relation module), or the ablations of appendix B.8: ``dot`` (dot product of the
            backbone features as the logit) and ``encoder_dot`` (an MLP encoder, then the dot product).
        gamma: focal factor of eq. 8 (0 gives half the plain BCE).
        hidden_dim: hidden units of the relation module (and of the ablation encoder).
        encoder_dim: output size of the ``encoder_dot`` encoder.
        label_fraction: semi-supervised option (appendix A.7). A fixed, seeded fraction of the training images keeps
            its label; each epoch's order puts labelled images of the same class next to each other in pairs
            (:func:`pair_same_class`), and the positives of a labelled image pair it with its same-class partner in
            the mini-batch, so the share of same-class positive pairs follows the label fraction ("a portion of the
            total number of pairs in the mini-batch depending on the percentage of available labels"). 0 is fully
            self-supervised.
        gather_pairs: under torchrun, pair views across the whole global batch: features are all-gathered with
            gradients (``ssltk.distributed.gather_view_major``), each rank scores the pairs whose first member is
            one of its images, and the loss and gradients equal those of one process holding the global batch. Off,
            each rank pairs only its own images (fewer distinct negatives, no communication in the forward pass).
    """

    def __init__(self, in_dim: int, k: int = 32, aggregation: str = "cat", head: str = "relation",
                 gamma: float = 2.0, hidden_dim: int = 256, encoder_dim: int = 64, label_fraction: float = 0.0,
                 gather_pairs: bool = True):
        super().__init__(in_dim)
        if k < 2:
            raise SsltkError(f"relational needs k >= 2 views, got {k}")
        if aggregation not in AGGREGATIONS:
            raise SsltkError(f"unknown aggregation {aggregation!r}; use one of {', '.join(AGGREGATIONS)}")
        if head not in HEADS:
            raise SsltkError(f"unknown relational head {head!r}; use one of {', '.join(HEADS)}")
        if not 0.0 <= label_fraction <= 1.0:
            raise SsltkError(f"label_fraction must be in [0, 1], got {label_fraction}")
        self.k, self.aggregation, self.head_type, self.gamma = k, aggregation, head, gamma
        self.label_fraction, self.gather_pairs = label_fraction, gather_pairs
        self.uses_labels = label_fraction > 0
        if head == "relation":
            self.head: nn.Module = RelationHead(2 * in_dim if aggregation == "cat" else in_dim, hidden_dim)
        elif head == "encoder_dot":
            self.head = MLPHead(in_dim, encoder_dim, hidden_dim)
        else:
            self.head = nn.Identity()
        self.register_buffer("labelled", torch.zeros(0, dtype=torch.bool), persistent=False)
        self._train_labels = None

    @property
    def num_views(self) -> int:
        return self.k

    def on_fit_start(self, ctx: FitContext) -> None:
        if self.label_fraction > 0:
            g = torch.Generator().manual_seed(ctx.seed + 7)
            chosen = torch.randperm(ctx.num_train, generator=g)[: int(round(self.label_fraction * ctx.num_train))]
            mask = torch.zeros(ctx.num_train, dtype=torch.bool)
            mask[chosen] = True
            self.labelled = mask.to(ctx.device)
            self._train_labels = ctx.train_labels.detach().cpu().long()

    def epoch_order(self, perm: Tensor, epoch: int, seed: int) -> Tensor:
        if not self.uses_labels or not self.labelled.numel() or self._train_labels is None:
            return perm
        g = torch.Generator().manual_seed(seed + 11)
        return pair_same_class(perm, self._train_labels, self.labelled.cpu(), g)

    def scores(self, z: Tensor, idx_a: Tensor, idx_b: Tensor) -> Tensor:
        """Relation logits of the pairs (idx_a, idx_b) of view-major features z.

        Gathers use ``index_select``, whose backward (``index_add_``) sums a view's gradients in a fixed order on the
        CPU; ``z[idx]`` accumulates through ``index_put_``, which is not deterministic with several threads."""
        za, zb = z.index_select(0, idx_a), z.index_select(0, idx_b)
        if self.head_type == "relation":
            return self.head(aggregate(za, zb, self.aggregation))
        if self.head_type == "encoder_dot":
            e = self.head(z)
            return (e.index_select(0, idx_a) * e.index_select(0, idx_b)).sum(1)
        return (za * zb).sum(1)

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        k, m = batch.num_views, batch.batch_size
        z = backbone(batch.views)
        first = 0
        if self.gather_pairs and is_distributed():
            z, first = gather_view_major(z, k)
            batch = ViewBatch(z, k, all_gather_uneven(batch.index.to(z.device)),
                              None if batch.labels is None else all_gather_uneven(batch.labels))
        m_all = z.shape[0] // k
        idx_a, idx_b, targets = relation_pairs(k, m_all, z.device)
        if self.uses_labels and batch.labels is not None and self.labelled.numel():
            idx_b = self._semi_supervised(batch, idx_b, k, m_all)
        if m_all != m:  # this rank's share: the pairs whose first member is one of its own images
            own = (idx_a % m_all >= first) & (idx_a % m_all < first + m)
            idx_a, idx_b, targets = idx_a[own], idx_b[own], targets[own]
        logits = self.scores(z, idx_a, idx_b).float()
        loss = focal_bce_with_logits(logits, targets, self.gamma)
        with torch.no_grad():
            pred = logits > 0
            pos = targets > 0.5
            logs = {
                "accuracy": (pred == pos).float().mean(),
                "acc_pos": pred[pos].float().mean(),  # the authors' code swaps these two: here they are named right
                "acc_neg": (~pred[~pos]).float().mean(),
            }
        return ObjectiveOutput(loss, logs)

    def _semi_supervised(self, batch: ViewBatch, idx_b: Tensor, k: int, m: int) -> Tensor:
        known = self.labelled[batch.index.to(self.labelled.device)].to(batch.labels.device)
        labels = torch.where(known, batch.labels, torch.full_like(batch.labels, -1))
        partners = same_class_partners(labels, k)  # (pairs, M)
        _, vj = torch.triu_indices(k, k, offset=1, device=idx_b.device)
        pos_b = (vj[:, None] * m + partners.to(idx_b.device))  # (pairs, M)
        idx_b = idx_b.view(-1, 2, m).clone()
        idx_b[:, 0, :] = pos_b
        return idx_b.reshape(-1)
