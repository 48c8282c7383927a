"""Each baseline trains with the benchmark's own recipe (paper 000, A.5; authors' datamanager.py and methods/)."""
import math

import pytest
import torch

from ssltk.testing import SMALL_SPEC, build_pair, make_batch


def uniform_images(n=6, colour=(200, 40, 90)):
    return torch.tensor(colour, dtype=torch.uint8).view(1, 3, 1, 1).expand(n, 3, 32, 32).contiguous()


def normalised(colour):
    return torch.tensor([(c / 255 - m) / s for c, m, s in zip(colour, SMALL_SPEC.mean, SMALL_SPEC.std)])


@pytest.mark.parametrize("name", ["deepcluster", "deepinfomax", "supervised"])
def test_crop_flip_methods_keep_the_colour_of_a_uniform_image(name):
    # the contrastive recipe jitters colour; crop with padding 4 and flip (or flip alone) never change it
    _, obj = build_pair(name)
    views = obj.augmentation(SMALL_SPEC)(uniform_images(), obj.num_views, torch.Generator().manual_seed(0))
    centre = views[:, :, 8:24, 8:24]
    torch.testing.assert_close(centre, normalised((200, 40, 90)).view(1, 3, 1, 1).expand_as(centre))


def test_deepinfomax_only_flips():
    _, obj = build_pair("deepinfomax")
    x = torch.randint(0, 256, (16, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    views = obj.augmentation(SMALL_SPEC)(x, 1, torch.Generator().manual_seed(2))
    plain = (x.float() / 255 - torch.tensor(SMALL_SPEC.mean).view(1, 3, 1, 1)) / torch.tensor(SMALL_SPEC.std).view(1, 3, 1, 1)
    same = [torch.allclose(v, p, atol=1e-5) or torch.allclose(v, p.flip(-1), atol=1e-5) for v, p in zip(views, plain)]
    assert all(same)
    assert any(torch.allclose(v, p.flip(-1), atol=1e-5) and not torch.allclose(v, p, atol=1e-5)
               for v, p in zip(views, plain))


def test_deepinfomax_local_map_is_the_first_block_before_pooling():
    _, obj = build_pair("deepinfomax")
    bb, _ = build_pair("deepinfomax")
    obj.setup(bb, SMALL_SPEC)
    obj(make_batch(obj, 4), bb)  # the hook fires and is consumed by the forward pass
    x = torch.zeros(2, 3, 32, 32)
    bb(x)
    assert obj._captured.pop("local").shape == (2, 8, 32, 32)  # 8 x 32 x 32 on CIFAR, as the authors' encoder


def test_rotationnet_rotates_one_crop_four_ways():
    _, obj = build_pair("rotationnet")
    x = torch.randint(0, 256, (5, 3, 32, 32), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    v = obj.augmentation(SMALL_SPEC)(x, 4, torch.Generator().manual_seed(4))
    for k in range(1, 4):  # every view is the same cropped-and-flipped image, turned k quarter turns
        torch.testing.assert_close(torch.rot90(v[k * 5:(k + 1) * 5], -k, dims=(2, 3)), v[:5])
    # and the crop moved the image: a padded crop of a random image is not the image itself, for some images
    plain = (x.float() / 255 - torch.tensor(SMALL_SPEC.mean).view(1, 3, 1, 1)) / torch.tensor(SMALL_SPEC.std).view(1, 3, 1, 1)
    assert any(not (torch.allclose(a, b, atol=1e-5) or torch.allclose(a, b.flip(-1), atol=1e-5))
               for a, b in zip(v[:5], plain))


def test_rotationnet_random_mode_labels_each_view_with_its_drawn_rotation():
    from ssltk_baselines.rotation import rotate_each

    bb, obj = build_pair("rotationnet", objective_args={"k": 2, "rotations": "random"})
    batch = make_batch(obj, 6)
    assert batch.views.shape[0] == 12
    torch.manual_seed(7)
    loss = obj(batch, bb).loss
    torch.manual_seed(7)
    target = torch.randint(0, 4, (12,))
    with torch.no_grad():
        logits = obj.classifier(bb(rotate_each(batch.views, target)))
    torch.testing.assert_close(loss.detach(), torch.nn.functional.cross_entropy(logits, target))
    assert len(set(target.tolist())) > 2  # a four-way task even with K = 2
    with pytest.raises(ValueError, match="rotations: random"):
        build_pair("rotationnet", objective_args={"k": 2})


def test_deepcluster_reinitialises_its_last_layer_from_n_0_001():
    from ssltk.testing import contract_context

    bb, obj = build_pair("deepcluster", objective_args={"k": 64, "hidden": 256})
    obj.on_epoch_start(contract_context(bb), 0)
    w = obj.top.weight.detach()
    assert abs(w.std().item() - 0.01) < 0.001 and abs(w.mean().item()) < 0.001
    assert torch.count_nonzero(obj.top.bias) == 0


def mean_ratio_loop(z, t):
    """The benchmark's SimCLR loss written from its formula: -log(mean_i exp(s_ip/t) / sum_{k != i} exp(s_ik/t))."""
    n, m = z.shape[0], z.shape[0] // 2
    ratios = []
    for i in range(n):
        sims = [float(torch.dot(z[i], z[k]) / (z[i].norm() * z[k].norm())) / t for k in range(n)]
        ratios.append(math.exp(sims[(i + m) % n]) / sum(math.exp(sims[k]) for k in range(n) if k != i))
    return -math.log(sum(ratios) / n)


@pytest.mark.parametrize("seed,m,t", [(0, 4, 0.5), (1, 9, 0.2)])
def test_simclr_authors_variant_matches_its_formula(seed, m, t):
    from ssltk_baselines import nt_xent

    z = torch.randn(2 * m, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ours = nt_xent(z, 2, t, reduction="mean_ratio").item()
    assert ours == pytest.approx(mean_ratio_loop(z, t), abs=1e-6)
    assert ours != pytest.approx(nt_xent(z, 2, t).item(), abs=1e-4)  # a different loss from NT-Xent
    _, obj = build_pair("simclr", objective_args={"loss": "mean_ratio"})
    assert obj.loss == "mean_ratio"
    with pytest.raises(ValueError, match="unknown SimCLR loss"):
        build_pair("simclr", objective_args={"loss": "nope"})
