"""BYOL's, MoCo v3's and DINO's losses against loops written from their papers' equations."""
import math

import pytest
import torch

from ssltk_momentum.byol_loss import byol_loss
from ssltk_momentum.dino_loss import dino_loss, updated_center
from ssltk_momentum.infonce import mocov3_loss


def _unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def test_byol_loss_is_eq_2_symmetrised():
    """||q/||q|| - z/||z||||^2 for (view 1 prediction, view 2 target) plus the swapped pair, averaged."""
    torch.manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(5, 7) for _ in range(4))
    total = 0.0
    for p, z in ((p1, z2), (p2, z1)):
        for i in range(5):
            a, b = _unit(p[i].tolist()), _unit(z[i].tolist())
            total += sum((x - y) ** 2 for x, y in zip(a, b))
    assert byol_loss(p1, p2, z1, z2).item() == pytest.approx(total / 5, abs=1e-5)


def test_mocov3_loss_is_algorithm_1():
    """ctr(q, k) = -mean_i log(exp(q_i.k_i / t) / sum_j exp(q_i.k_j / t)) * 2t, summed over the two pairings."""
    torch.manual_seed(1)
    q1, q2, k1, k2 = (torch.randn(6, 4) for _ in range(4))
    for t in (0.2, 1.0):
        expected = 0.0
        for q, k in ((q1, k2), (q2, k1)):
            qs, ks = [_unit(r) for r in q.tolist()], [_unit(r) for r in k.tolist()]
            terms = []
            for i, qi in enumerate(qs):
                den = sum(math.exp(_dot(qi, kj) / t) for kj in ks)
                terms.append(-math.log(math.exp(_dot(qi, ks[i]) / t) / den))
            expected += sum(terms) / len(terms) * 2 * t
        assert mocov3_loss(q1, q2, k1, k2, t).item() == pytest.approx(expected, abs=1e-5)


def test_mocov3_keys_get_no_gradient():
    q1, q2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    k1, k2 = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    mocov3_loss(q1, q2, k1, k2, 0.2).backward()
    assert q1.grad is not None and k1.grad is None and k2.grad is None


def _softmax(v, t):
    m = max(x / t for x in v)
    e = [math.exp(x / t - m) for x in v]
    return [x / sum(e) for x in e]


def test_dino_loss_is_eq_2_over_pairs_of_different_views():
    """sum over teacher global views x and student views x' != x of H(P_t(x), P_s(x')), averaged over the pairs."""
    torch.manual_seed(2)
    b, k = 3, 5
    student = [torch.randn(b, k) for _ in range(4)]  # 2 global then 2 local
    teacher = [torch.randn(b, k) for _ in range(2)]
    center = torch.randn(1, k) * 0.1
    ts, tt = 0.1, 0.04
    total, pairs = 0.0, 0
    for i, t in enumerate(teacher):
        for v, s in enumerate(student):
            if v == i:
                continue
            h = 0.0
            for n in range(b):
                pt = _softmax([x - c for x, c in zip(t[n].tolist(), center[0].tolist())], tt)
                ps = _softmax(s[n].tolist(), ts)
                h += -sum(a * math.log(c) for a, c in zip(pt, ps))
            total += h / b
            pairs += 1
    assert dino_loss(student, teacher, center, ts, tt).item() == pytest.approx(total / pairs, rel=1e-5)


def test_dino_center_is_an_ema_of_the_teacher_batch_mean():
    teacher = [torch.ones(2, 3), 3 * torch.ones(2, 3)]
    c = updated_center(torch.zeros(1, 3), teacher, 0.9)
    assert torch.allclose(c, torch.full((1, 3), 0.2))
