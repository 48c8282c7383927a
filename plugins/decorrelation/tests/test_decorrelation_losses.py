"""Barlow Twins' and VICReg's losses against loops written from their papers' equations."""
import math

import pytest
import torch

from ssltk_decorrelation.barlow_twins_loss import barlow_twins_loss
from ssltk_decorrelation.vicreg_loss import vicreg_loss


def _columns(z):
    return [list(col) for col in zip(*z.tolist())]


def _mean(v):
    return sum(v) / len(v)


def _var(v, unbiased):
    m = _mean(v)
    return sum((x - m) ** 2 for x in v) / (len(v) - (1 if unbiased else 0))


def test_barlow_twins_loss_is_eq_1_and_2():
    """C_ij = sum_b zA_bi zB_bj / N on batch-standardised embeddings; sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2."""
    torch.manual_seed(0)
    z1, z2 = torch.randn(8, 4), torch.randn(8, 4)
    std = lambda col: [(x - _mean(col)) / math.sqrt(_var(col, False) + 1e-5) for x in col]
    a, b = [std(c) for c in _columns(z1)], [std(c) for c in _columns(z2)]
    lambd, loss = 0.0051, 0.0
    for i in range(4):
        for j in range(4):
            cij = sum(x * y for x, y in zip(a[i], b[j])) / 8
            loss += (1 - cij) ** 2 if i == j else lambd * cij ** 2
    assert barlow_twins_loss(z1, z2, lambd).item() == pytest.approx(loss, rel=1e-5)


def test_barlow_twins_loss_is_zero_for_identical_decorrelated_views():
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert barlow_twins_loss(z, z).item() == pytest.approx(0.0, abs=1e-4)


def test_vicreg_loss_is_eq_6():
    """25 s(Z, Z') + 25 [v(Z) + v(Z')] / 2 + [c(Z) + c(Z')]: s the mean squared distance, v the hinge on the
    standard deviation sqrt(Var + 1e-4) at 1, c the squared off-diagonal covariances over d."""
    torch.manual_seed(1)
    z1, z2 = torch.randn(6, 3) * 0.5, torch.randn(6, 3) * 2
    n, d = 6, 3
    s = sum((x - y) ** 2 for r1, r2 in zip(z1.tolist(), z2.tolist()) for x, y in zip(r1, r2)) / (n * d)

    def v(z):
        return _mean([max(0.0, 1 - math.sqrt(_var(col, True) + 1e-4)) for col in _columns(z)])

    def c(z):
        cols = _columns(z)
        total = 0.0
        for i in range(d):
            for j in range(d):
                if i != j:
                    cov = sum((x - _mean(cols[i])) * (y - _mean(cols[j])) for x, y in zip(cols[i], cols[j])) / (n - 1)
                    total += cov ** 2
        return total / d

    expected = 25 * s + 25 * (v(z1) + v(z2)) / 2 + (c(z1) + c(z2))
    assert vicreg_loss(z1, z2).item() == pytest.approx(expected, rel=1e-5)
