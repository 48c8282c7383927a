"""The Jensen-Shannon mutual-information estimator of Deep InfoMax (Hjelm et al. 2019, eq. 4, softplus form)."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def jsd_mi(pos: Tensor, neg: Tensor) -> Tensor:
    """Jensen-Shannon MI estimate (DIM eq. 4, softplus form): E_pos[-softplus(-T)] - E_neg[softplus(T)]."""
    return (-F.softplus(-pos)).mean() - F.softplus(neg).mean()
