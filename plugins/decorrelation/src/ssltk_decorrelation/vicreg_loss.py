"""The VICReg loss (Bardes, Ponce & LeCun 2022, eq. 1-6): invariance, variance and covariance terms."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .barlow_twins_loss import off_diagonal


def variance(z: Tensor, gamma: float = 1.0, eps: float = 1e-4) -> Tensor:
    """v(Z) = mean_j max(0, gamma - sqrt(Var(z^j) + eps)) (eq. 1), the unbiased variance over the batch."""
    return F.relu(gamma - torch.sqrt(z.var(0) + eps)).mean()


def covariance(z: Tensor) -> Tensor:
    """c(Z) = sum_{i != j} C(Z)_ij^2 / d (eq. 3-4), with C(Z) the covariance matrix over the batch."""
    n, d = z.shape
    z = z - z.mean(0)
    cov = z.T @ z / (n - 1)
    return off_diagonal(cov).pow(2).sum() / d


def vicreg_loss(z1: Tensor, z2: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0) -> Tensor:
    """lambda s(Z, Z') + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')] (eq. 6 with the authors' halving of the
    variance term), s the mean squared distance (eq. 5)."""
    z1, z2 = z1.float(), z2.float()
    invariance = F.mse_loss(z1, z2)
    return (sim_coeff * invariance + std_coeff * (variance(z1) + variance(z2)) / 2
            + cov_coeff * (covariance(z1) + covariance(z2)))
