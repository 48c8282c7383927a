"""SimCLR's NT-Xent against a loop written from the paper, and RotationNet's labels."""
import math

import pytest
import torch

from ssltk.testing import build_pair, check_objective, make_batch
from ssltk_baselines import nt_xent


def nt_xent_loop(z, temperature):
    """Eq. 1 of Chen et al. (2020), one anchor at a time: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t)."""
    n = z.shape[0]
    m = n // 2
    total = 0.0
    for i in range(n):
        j = (i + m) % n
        sims = [float(torch.dot(z[i], z[k]) / (z[i].norm() * z[k].norm())) / temperature for k in range(n)]
        denom = sum(math.exp(sims[k]) for k in range(n) if k != i)
        total += -math.log(math.exp(sims[j]) / denom)
    return total / n


@pytest.mark.parametrize("seed,m,t", [(0, 4, 0.5), (1, 7, 0.1), (2, 16, 1.0)])
def test_nt_xent_matches_the_loop(seed, m, t):
    z = torch.randn(2 * m, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert nt_xent(z.double(), 2, t).item() == pytest.approx(nt_xent_loop(z, t), abs=1e-5)


def test_gathered_negatives_extend_the_candidates():
    g = torch.Generator().manual_seed(3)
    ours, other = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    gather = lambda z: (torch.cat([z, torch.nn.functional.normalize(other, dim=1)]), 0)
    loss = nt_xent(ours, 2, 0.5, gather)
    # by hand: every anchor now also competes with the 8 normalised views of the other process
    zn = torch.nn.functional.normalize(ours, dim=1)
    keys = torch.cat([zn, torch.nn.functional.normalize(other, dim=1)])
    sim = zn @ keys.T / 0.5
    sim[torch.arange(8), torch.arange(8)] = float("-inf")
    expected = torch.nn.functional.cross_entropy(sim, (torch.arange(8) + 4) % 8)
    torch.testing.assert_close(loss, expected)
    assert loss > nt_xent(ours, 2, 0.5)


def test_nt_xent_needs_two_views():
    with pytest.raises(ValueError, match="two views"):
        nt_xent(torch.randn(6, 3), 3)


def test_rotation_labels_follow_view_index():
    bb, obj = build_pair("rotationnet")
    batch = make_batch(obj, batch_size=3)
    # view k of every image is the image rotated k * 90 degrees: rotating view 1 back by -90 recovers view 0
    torch.testing.assert_close(torch.rot90(batch.view(1), -1, dims=(2, 3)), batch.view(0))
    with torch.no_grad():
        logits = obj.classifier(bb(batch.views))
    expected = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]))
    torch.testing.assert_close(obj(batch, bb).loss.detach(), expected)


def test_rotation_b6_variant_and_contracts():
    check_objective("rotationnet", objective_args={"k": 2, "rotations": "random"})
    check_objective("simclr")
    check_objective("simclr", objective_args={"loss": "mean_ratio"})
    with pytest.raises(ValueError, match="k must be 4"):
        build_pair("rotationnet", objective_args={"k": 6})
