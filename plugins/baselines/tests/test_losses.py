"""Each loss module against a loop written from its paper's equation."""
import math

import pytest
import torch

from ssltk_baselines.jsd import jsd_mi
from ssltk_baselines.nt_xent import nt_xent


def _loop_nt_xent(z, t):
    """SimCLR eq. 1, view by view: l_i = -log exp(s_i,pos / t) / sum_{k != i} exp(s_ik / t); both reductions."""
    z = torch.nn.functional.normalize(z.double(), dim=1)
    n = z.shape[0]
    losses, ratios = [], []
    for i in range(n):
        pos = (i + n // 2) % n
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        r = math.exp(float(z[i] @ z[pos]) / t) / den
        losses.append(-math.log(r))
        ratios.append(r)
    return sum(losses) / n, -math.log(sum(ratios) / n)


def test_nt_xent_equals_its_equation_written_out():
    torch.manual_seed(0)
    z = torch.randn(12, 5)
    for t in (0.1, 0.5, 1.0):
        mean_loss, mean_ratio = _loop_nt_xent(z, t)
        assert nt_xent(z, 2, t).item() == pytest.approx(mean_loss, abs=1e-5)
        assert nt_xent(z, 2, t, reduction="mean_ratio").item() == pytest.approx(mean_ratio, abs=1e-5)


def test_jsd_equals_its_equation_written_out():
    """DIM eq. 4: E_P[-sp(-T)] - E_N[sp(T)], sp(x) = log(1 + e^x)."""
    pos, neg = torch.tensor([1.5, -0.2, 3.0]), torch.tensor([0.4, -2.0])
    sp = lambda x: math.log(1 + math.exp(x))
    expected = sum(-sp(-p) for p in pos.tolist()) / 3 - sum(sp(n) for n in neg.tolist()) / 2
    assert jsd_mi(pos, neg).item() == pytest.approx(expected, abs=1e-6)
