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
