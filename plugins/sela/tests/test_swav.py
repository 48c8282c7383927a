"""SwAV: its online Sinkhorn against the authors' exp-domain iteration, its loss against eq. 2 written out, and the
queue and the prototypes' first-epoch freeze."""
import math

import pytest
import torch

from ssltk.testing import build_pair, make_batch
from ssltk_sela.sinkhorn import sinkhorn_codes
from ssltk_sela.swav_loss import swav_loss


def _authors_sinkhorn(scores, eps, iters):
    """SwAV's ``distributed_sinkhorn`` on one process: Q = exp(s / eps)^T, normalised, then prototypes and samples
    alternately, and Q * B returned as B x K."""
    q = torch.exp(scores.double() / eps).t()
    b, k = q.shape[1], q.shape[0]
    q /= q.sum()
    for _ in range(iters):
        q /= q.sum(1, keepdim=True)
        q /= k
        q /= q.sum(0, keepdim=True)
        q /= b
    return (q * b).t()


def test_sinkhorn_codes_equal_the_authors_iteration():
    torch.manual_seed(0)
    scores = torch.nn.functional.normalize(torch.randn(16, 8), dim=1) @ torch.nn.functional.normalize(
        torch.randn(10, 8), dim=1).T
    for eps in (0.05, 0.01):  # the scaled exponential domain, then the log domain (a range of 2 / 0.01 = 200)
        for iters in (1, 3):
            codes = sinkhorn_codes(scores, eps, iters)
            assert torch.allclose(codes.double(), _authors_sinkhorn(scores, eps, iters), atol=1e-4)
            assert torch.allclose(codes.sum(1), torch.ones(16), atol=1e-5)  # each row is a soft code


def test_sinkhorn_codes_survive_a_tiny_epsilon():
    scores = torch.rand(32, 12) * 2 - 1
    codes = sinkhorn_codes(scores, 0.001, 3)  # exp(2000): the exp-domain iteration overflows here
    assert torch.isfinite(codes).all()


def test_swav_loss_is_eq_2_averaged_over_views():
    torch.manual_seed(1)
    scores = [torch.randn(3, 4) for _ in range(3)]
    codes = [torch.softmax(torch.randn(3, 4), 1) for _ in range(2)]
    t, total = 0.1, 0.0
    for i, q in enumerate(codes):
        per_view = []
        for v, s in enumerate(scores):
            if v == i:
                continue
            h = 0.0
            for n in range(3):
                row = [x / t for x in s[n].tolist()]
                lse = math.log(sum(math.exp(x) for x in row))
                h += -sum(a * (x - lse) for a, x in zip(q[n].tolist(), row))
            per_view.append(h / 3)
        total += sum(per_view) / len(per_view)
    assert swav_loss(scores, codes, t).item() == pytest.approx(total / 2, rel=1e-5)


def test_queue_fills_from_its_start_epoch_and_joins_the_problem_when_full():
    bb, obj = build_pair("swav", objective_args={"prototypes": 8, "hidden_dim": 32, "num_local": 0,
                                                 "queue_length": 8, "queue_start_epoch": 1})
    batch = make_batch(obj, batch_size=4)
    obj.on_step_start(0, 0.0)  # epoch 0: before the queue's start
    obj(batch, bb)
    assert not obj.queue.any()
    obj.on_step_start(1, 0.5)  # steps_per_epoch is 1 in the contract context: epoch 1
    obj(batch, bb)
    assert obj.queue[:, :4].any() and not obj.queue[:, 4:].any()
    obj(batch, bb)
    assert obj.queue[:, -1].any()  # full: the next Sinkhorn step includes it


def test_prototypes_are_unit_norm_and_take_no_step_in_the_first_epoch():
    bb, obj = build_pair("swav", objective_args={"prototypes": 8, "hidden_dim": 32, "num_local": 0,
                                                 "queue_length": 0})
    obj.on_step_start(0, 0.0)
    assert torch.allclose(obj.prototypes.weight.norm(dim=1), torch.ones(8), atol=1e-6)
    obj(make_batch(obj, batch_size=4), bb).loss.backward()
    assert obj.prototypes.weight.grad is not None
    obj.before_optimizer_step(bb, 0)
    assert obj.prototypes.weight.grad is None  # the optimizer skips it
    obj(make_batch(obj, batch_size=4), bb).loss.backward()
    obj.before_optimizer_step(bb, 1)  # the second epoch
    assert obj.prototypes.weight.grad is not None
