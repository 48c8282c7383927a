"""Focal binary cross-entropy of paper 002, eq. 7-8."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_bce_with_logits(logits: Tensor, targets: Tensor, gamma: float = 2.0) -> Tensor:
    """L = (1/P) sum_i -w_i [t_i log y_i + (1 - t_i) log(1 - y_i)] with y = sigmoid(logit) (eq. 7) and
    w_i = 1/2 [(1 - t_i) y_i + t_i (1 - y_i)]^gamma (eq. 8).

    The logs are computed as logsigmoid of the logits for numerical safety. As in eq. 8 the weight keeps its 1/2
    factor (the authors' code calls it alpha=0.5), so gamma = 0 gives half the plain BCE; the weight is part of the
    graph, as in the focal loss of Lin et al. (2017).
    """
    t = targets.to(logits.dtype)
    y = torch.sigmoid(logits)
    w = 0.5 * ((1 - t) * y + t * (1 - y)).pow(gamma)
    nll = -(t * F.logsigmoid(logits) + (1 - t) * F.logsigmoid(-logits))
    return (w * nll).mean()
