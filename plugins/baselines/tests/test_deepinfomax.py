"""Deep InfoMax: the JSD estimator, the local critic, and the two adversarial players' gradients."""
import math

import pytest
import torch

from ssltk.testing import build_pair, check_objective, make_batch


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
    fake = bb(batch.views).detach()  # the prior is matched on y itself
    real = torch.rand_like(fake)
    d_real, d_fake = obj.discriminator(real), obj.discriminator(fake)
    d_loss = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    want = torch.autograd.grad(d_loss, d_params)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    check_objective("deepinfomax")
