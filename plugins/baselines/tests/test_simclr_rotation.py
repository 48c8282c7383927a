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
    check_objective("rotationnet", objective_args={"k": 8})
    check_objective("simclr")
    with pytest.raises(ValueError, match="multiple of 4"):
        build_pair("rotationnet", objective_args={"k": 6})


def test_deepcluster_clusters_whitened_features_and_samples_uniformly_over_clusters():
    from ssltk.testing import contract_context

    for backend in ("sklearn", "torch"):
        bb, obj = build_pair("deepcluster", objective_args={"k": 8, "backend": backend})
        ctx = contract_context(bb)
        top_before = obj.top.weight.detach().clone()
        obj.on_epoch_start(ctx, 0)
        assert obj.pseudo.shape == (256,) and int(obj.pseudo.max()) < 8
        assert not torch.equal(top_before, obj.top.weight)  # the last layer is re-initialised
        w = obj.sampling_weights()
        sizes = torch.bincount(obj.pseudo, minlength=8).float()
        # each non-empty cluster carries the same total weight: uniform sampling over clusters
        per_cluster = torch.zeros(8).index_add_(0, obj.pseudo, w.float())
        torch.testing.assert_close(per_cluster[sizes > 0], torch.ones(int((sizes > 0).sum())))
    assert build_pair("deepcluster")[1].k == 40  # 10 x the contract data's 4 classes


def test_pca_whitening_gives_unit_variance():
    from ssltk_baselines.deepcluster import pca_whiten

    x = torch.randn(500, 6, generator=torch.Generator().manual_seed(0)) @ torch.randn(6, 6)
    w = pca_whiten(x, 4)
    assert w.shape == (500, 4)
    torch.testing.assert_close(torch.cov(w.T), torch.eye(4), atol=1e-3, rtol=0)


def test_weighted_sampling_through_the_trainer(tmp_path):
    import ssltk

    res = ssltk.fit("deepcluster", data_args={"train_size": 256}, objective_args={"k": 10},
                    trainer={"epochs": 1, "batch_size": 32, "run_dir": str(tmp_path), "progress": False},
                    evaluate={"linear": False})
    assert res.objective.sampling_weights() is not None


def test_jsd_estimator_matches_its_formula_on_hand_values():
    from ssltk_baselines import jsd_mi

    pos, neg = torch.tensor([0.0, 2.0]), torch.tensor([-1.0, 1.0])
    sp = lambda x: math.log1p(math.exp(x))
    expected = -(sp(-0.0) + sp(-2.0)) / 2 - (sp(-1.0) + sp(1.0)) / 2
    assert jsd_mi(pos, neg).item() == pytest.approx(expected, abs=1e-6)
    # a perfect critic approaches the bound's maximum log 4 - 2 log 2 = 0 from below; a useless one sits at -2 log 2
    assert jsd_mi(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(-2 * math.log(2), abs=1e-6)


def test_local_critic_equals_concat_and_1x1_convolutions():
    from torch import nn

    from ssltk_baselines.deepinfomax import LocalCritic

    torch.manual_seed(0)
    critic = LocalCritic(local_channels=5, global_dim=7, hidden=16)
    y, local = torch.randn(4, 7), torch.randn(4, 5, 6, 6)
    convs = nn.Sequential(nn.Conv2d(12, 16, 1), nn.ReLU(), nn.Conv2d(16, 16, 1), nn.ReLU(), nn.Conv2d(16, 1, 1))
    for conv, lin in zip(convs[::2], [critic.first, critic.rest[1], critic.rest[3]]):
        conv.weight.data.copy_(lin.weight[:, :, None, None])
        conv.bias.data.copy_(lin.bias)
    glob = y[:, :, None, None].expand(-1, -1, 6, 6)
    pos, neg = critic(y, local, shifts=(0, 1))
    torch.testing.assert_close(pos, convs(torch.cat([glob, local], 1))[:, 0])
    # negatives: image i's global vector against image i-1's local map
    torch.testing.assert_close(neg, convs(torch.cat([glob, local.roll(1, dims=0)], 1))[:, 0])


def test_deepinfomax_players_get_only_their_own_gradients():
    import torch.nn.functional as F

    bb, obj = build_pair("deepinfomax")
    assert obj.critic.first.in_features == 8 + 64  # Conv-4's first block (8 channels) + the 64-d global vector
    assert all(not n.startswith("_") for n, _ in obj.named_modules())  # the backbone is not a submodule
    batch = make_batch(obj, batch_size=4)
    torch.manual_seed(0)
    out = obj(batch, bb)
    d_params = list(obj.discriminator.parameters())
    got = torch.autograd.grad(out.loss, d_params)
    # the discriminator's own loss alone, on the same (detached) encoder output and the same prior samples
    torch.manual_seed(0)
    fake = torch.sigmoid(bb(batch.views)).detach()
    real = torch.rand_like(fake)
    d_real, d_fake = obj.discriminator(real), obj.discriminator(fake)
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    want = torch.autograd.grad(d_loss, d_params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    check_objective("deepinfomax")
