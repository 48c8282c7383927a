"""Pairs of relational reasoning (paper 002, section 3.1, eq. 3-5; paper 000, Algorithm 1 and appendix D).

The positive and negative pair indices, with the authors' collision-free roll for negatives, come from
:func:`ssltk.pairs.view_pairs`; this module adds the semi-supervised partners and the aggregation functions.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from ssltk.pairs import view_pairs as relation_pairs  # noqa: F401  (re-exported: the relational name for them)

AGGREGATIONS = ("cat", "sum", "mean", "max")


def same_class_partners(labels: Tensor, k: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """For the semi-supervised variant (paper 000, appendix A.7): for each view pair and image n whose label is
    known, a random other image of the batch with the same label (n itself where there is none or no label).
    Returns (pairs, M) image indices."""
    m = labels.numel()
    n_pairs = k * (k - 1) // 2
    known = labels >= 0
    same = (labels[:, None] == labels[None, :]) & known[:, None] & known[None, :]
    same.fill_diagonal_(False)
    scores = torch.rand(n_pairs, m, m, generator=generator, device=labels.device)
    scores = scores.masked_fill(~same, -1.0)
    best = scores.argmax(-1)
    has = same.any(1)
    return torch.where(has[None, :], best, torch.arange(m, device=labels.device)[None, :])


def pair_same_class(perm: Tensor, labels: Tensor, labelled: Tensor, generator: torch.Generator) -> Tensor:
    """``perm`` rearranged so that labelled images of the same class follow each other in pairs (appendix A.7): the
    labelled images of each class are shuffled and paired, and each pair is placed where its first member comes in
    ``perm``, so a mini-batch that holds one holds its partner (but where a pair straddles two batches). Unlabelled
    images keep their order. The share of positives that become same-class pairs then follows the label fraction;
    with partners sought only among the images that happen to share a 64-image batch, 1% of labels changed about
    0.05% of them."""
    partner = torch.full((labels.numel(),), -1, dtype=torch.long)
    for c in labels[labelled].unique().tolist():
        members = (labelled & (labels == c)).nonzero().squeeze(1)
        members = members[torch.randperm(members.numel(), generator=generator)]
        pairs = members[: members.numel() // 2 * 2].view(-1, 2)
        partner[pairs[:, 0]] = pairs[:, 1]
        partner[pairs[:, 1]] = pairs[:, 0]
    # each image sorts at its place in perm; the later member of a pair sorts just behind the earlier one
    pos = torch.empty(labels.numel(), dtype=torch.float64)
    pos[perm] = torch.arange(perm.numel(), dtype=torch.float64)
    key = pos.clone()
    later = (partner >= 0) & (pos > pos[partner.clamp(min=0)])
    key[later] = pos[partner[later]] + 0.5
    return perm[torch.argsort(key[perm])]


def aggregate(za: Tensor, zb: Tensor, how: str = "cat") -> Tensor:
    """The aggregation functions of eq. 5 (``mean`` is the one of appendix B.8, Table 13)."""
    if how == "cat":
        return torch.cat([za, zb], dim=1)
    if how == "sum":
        return za + zb
    if how == "mean":
        return (za + zb) * 0.5
    if how == "max":
        return torch.maximum(za, zb)
    raise ValueError(f"unknown aggregation {how!r}; use one of {AGGREGATIONS}")
