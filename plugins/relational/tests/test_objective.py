import pytest
import torch

from ssltk import FitContext, ViewBatch
from ssltk.testing import check_objective
from ssltk_relational import RelationalObjective
from ssltk_relational.pairs import relation_pairs


@pytest.mark.parametrize("args", [
    {"k": 4}, {"k": 3, "aggregation": "sum"}, {"k": 3, "aggregation": "mean"}, {"k": 3, "aggregation": "max"},
    {"k": 3, "head": "dot"}, {"k": 3, "head": "encoder_dot"}, {"k": 3, "label_fraction": 0.5},
])
def test_contract_for_every_option(args):
    check_objective("relational", "conv4", objective_args=args)


def test_bad_options_are_clear():
    from ssltk.errors import SsltkError

    for bad in ({"k": 1}, {"aggregation": "prod"}, {"head": "mlp"}, {"label_fraction": 2.0}):
        with pytest.raises(SsltkError):
            RelationalObjective(64, **bad)


def ctx(n, labels):
    return FitContext(num_train=n, num_classes=3, seed=0, device=torch.device("cpu"), epochs=1, steps_per_epoch=1,
                      train_labels=labels, extract_features=lambda *a: None)


def test_semi_supervised_positives_pair_same_class_images():
    torch.manual_seed(0)
    obj = RelationalObjective(4, k=2, label_fraction=1.0)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    obj.on_fit_start(ctx(6, labels))
    batch = ViewBatch(views=torch.zeros(12, 1), num_views=2, index=torch.arange(6), labels=labels)
    ia, ib, t = relation_pairs(2, 6)
    new_b = obj._semi_supervised(batch, ib, 2, 6)
    pos = t == 1
    assert (labels[new_b[pos] % 6] == labels[ia[pos] % 6]).all()
    assert ((new_b[pos] % 6) != (ia[pos] % 6)).all()  # different images of the same class
    assert torch.equal(new_b[~pos], ib[~pos])  # negatives untouched


def test_label_fraction_fixes_a_seeded_subset():
    obj = RelationalObjective(4, k=2, label_fraction=0.25)
    obj.on_fit_start(ctx(1000, torch.zeros(1000, dtype=torch.long)))
    first = obj.labelled.clone()
    obj.on_fit_start(ctx(1000, torch.zeros(1000, dtype=torch.long)))
    assert first.sum() == 250 and torch.equal(first, obj.labelled)


def test_logs_name_positives_and_negatives_correctly():
    obj = RelationalObjective(2, k=2, head="dot")
    # features where positives have a large dot product and negatives a negative one
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]) * 3 - 1

    class Ident(torch.nn.Module):
        def forward(self, x):
            return x

    out = obj(ViewBatch(views=z, num_views=2, index=torch.arange(2)), Ident())
    assert out.logs["acc_pos"] == 1.0 and out.logs["acc_neg"] == 1.0



def test_one_percent_of_labels_pairs_one_percent_of_positives():
    """Paper 000, A.7: the share of same-class positive pairs follows the label fraction. Partners searched only
    among the images that happen to share a batch made 1% of labels change about 0.05% of the positives."""
    from ssltk.testing import contract_context
    from ssltk_relational.pairs import same_class_partners

    n, b = 6400, 64
    obj = RelationalObjective(4, k=2, label_fraction=0.01)
    ctx = contract_context(torch.nn.Identity(), num_train=n)
    ctx.train_labels = torch.randint(0, 10, (n,), generator=torch.Generator().manual_seed(0))
    obj.on_fit_start(ctx)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))

    def share(order):
        changed = 0
        for start in range(0, n, b):
            idx = order[start:start + b]
            labels = torch.where(obj.labelled[idx], ctx.train_labels[idx], torch.full((b,), -1))
            partners = same_class_partners(labels, 2)
            changed += int((partners[0] != torch.arange(b)).sum())
        return changed / n

    ordered = obj.epoch_order(perm, 0, 5)
    assert sorted(ordered.tolist()) == list(range(n))  # a permutation: every image once per epoch
    assert torch.equal(ordered, obj.epoch_order(perm, 0, 5))  # the same order when the epoch is run again
    assert 0.008 <= share(ordered) <= 0.0101
    assert share(perm) < 0.002
