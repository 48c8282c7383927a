"""The vectorised aggregation against a plain loop written from the paper (000, Algorithm 1 and appendix D)."""
import pytest
import torch

from ssltk_relational.pairs import aggregate, relation_pairs, same_class_partners


def loop_pairs(features, k, how="cat"):
    """Appendix D's aggregate(): for i < j, positives then negatives rolled by a shift that starts at 1, grows by one
    per pair and goes back to 1 when it reaches the batch size."""
    pairs, targets = [], []
    size = features.shape[0] // k
    shifts = 1
    for i1 in range(0, size * k, size):
        for i2 in range(i1 + size, size * k, size):
            a, b = features[i1:i1 + size], features[i2:i2 + size]
            pairs.append(aggregate(a, b, how))
            pairs.append(aggregate(a, torch.roll(b, shifts=shifts, dims=0), how))
            targets += [torch.ones(size), torch.zeros(size)]
            shifts += 1
            if shifts >= size:
                shifts = 1
    return torch.cat(pairs), torch.cat(targets)


@pytest.mark.parametrize("k,m", [(2, 2), (4, 5), (5, 3), (8, 16), (32, 4)])
@pytest.mark.parametrize("how", ["cat", "sum", "mean", "max"])
def test_index_pairs_equal_the_loop(k, m, how):
    z = torch.randn(k * m, 6)
    ia, ib, t = relation_pairs(k, m)
    ref_pairs, ref_t = loop_pairs(z, k, how)
    assert torch.equal(aggregate(z[ia], z[ib], how), ref_pairs)
    assert torch.equal(t, ref_t)
    assert t.numel() == m * k * (k - 1)  # eq. 4: P = M (K^2 - K), half positive
    assert t.sum() == t.numel() / 2


@pytest.mark.parametrize("k,m", [(4, 2), (6, 7), (32, 64)])
def test_negatives_never_pair_an_image_with_itself(k, m):
    ia, ib, t = relation_pairs(k, m)
    neg = t == 0
    assert ((ia[neg] % m) != (ib[neg] % m)).all()
    pos = t == 1
    assert ((ia[pos] % m) == (ib[pos] % m)).all()
    assert ((ia // m) < (ib // m)).all()  # i < j: one of each symmetric tuple, no identical views


def test_too_few_views_or_images():
    with pytest.raises(ValueError):
        relation_pairs(1, 4)
    with pytest.raises(ValueError):
        relation_pairs(4, 1)


def test_same_class_partners():
    labels = torch.tensor([0, 1, 0, 2, -1, 1])
    p = same_class_partners(labels, 3, torch.Generator().manual_seed(0))
    assert p.shape == (3, 6)
    assert (p[:, 0] == 2).all() and (p[:, 2] == 0).all()  # the other 0
    assert (p[:, 1] == 5).all() and (p[:, 5] == 1).all()
    assert (p[:, 3] == 3).all() and (p[:, 4] == 4).all()  # alone in its class / unlabelled: itself
