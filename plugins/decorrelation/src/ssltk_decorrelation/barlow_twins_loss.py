"""The Barlow Twins loss (Zbontar et al. 2021, eq. 1 and 2): the cross-correlation matrix of the two views'
batch-standardised embeddings is pushed to the identity."""
from __future__ import annotations

import torch
from torch import Tensor


def off_diagonal(m: Tensor) -> Tensor:
    """The off-diagonal entries of a square matrix, flattened."""
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def standardise(z: Tensor, eps: float = 1e-5) -> Tensor:
    """Per dimension over the batch, as the authors' BatchNorm1d without affine parameters (biased variance)."""
    z = z.float()
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float = 0.0051) -> Tensor:
    """sum_i (1 - C_ii)^2 + lambda sum_i sum_{j != i} C_ij^2 with C_ij = sum_b z1_bi z2_bj / N (eq. 1 and 2), on
    standardised embeddings."""
    c = standardise(z1).T @ standardise(z2) / z1.shape[0]
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    return on_diag + lambd * off_diagonal(c).pow(2).sum()
