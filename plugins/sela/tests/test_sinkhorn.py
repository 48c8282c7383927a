"""Sinkhorn-Knopp (paper 004, eq. 6-8) against an exact equipartition solver, marginals, chunking and warm start."""
import numpy as np
import pytest
import torch

from ssltk_sela.sinkhorn import assignment, scaled_log_probs, sinkhorn_labels, sinkhorn_log


def _exact_equipartition(logits: torch.Tensor) -> np.ndarray:
    """The exact solution of eq. 6: a linear assignment onto K columns each replicated N/K times."""
    from scipy.optimize import linear_sum_assignment

    n, k = logits.shape
    cost = -np.repeat(torch.log_softmax(logits, 1).numpy(), n // k, axis=1)
    _, col = linear_sum_assignment(cost)
    return col // (n // k)


@pytest.mark.parametrize("seed,n,k", [(0, 60, 3), (1, 120, 4), (2, 100, 10)])
def test_large_lambda_recovers_the_exact_equipartition(seed, n, k):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 2
    res = sinkhorn_labels(logits, lam=1000.0, tol=1e-4, max_iters=50000)
    np.testing.assert_array_equal(res.labels.numpy(), _exact_equipartition(logits))
    assert np.bincount(res.labels.numpy(), minlength=k).tolist() == [n // k] * k


def test_marginals_match_to_1e_3_at_lambda_25_in_float32():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(500, 20, generator=g) * 5  # peaked: P^25 underflows in float32 outside the log domain
    assert (torch.softmax(logits, 1) ** 25).min() == 0  # which is why the scaled (non-log) iteration would fail
    a = scaled_log_probs(logits, 25.0)
    assert a.dtype == torch.float32
    res = sinkhorn_log(a, tol=1e-4, max_iters=5000)
    q = assignment(a.double(), type(res)(res.labels, res.u.double(), res.v.double(), res.iterations, res.error))
    assert torch.isfinite(q).all()
    np.testing.assert_allclose((q.sum(1) * 500).numpy(), 1.0, atol=1e-3)
    np.testing.assert_allclose((q.sum(0) * 20).numpy(), 1.0, atol=1e-3)
    assert res.error < 1e-4


def test_results_do_not_depend_on_the_chunk_size():
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(1000, 20, generator=g) * 3
    a = sinkhorn_labels(logits, lam=25.0, chunk=37)
    b = sinkhorn_labels(logits, lam=25.0, chunk=100000)
    assert torch.equal(a.labels, b.labels) and a.iterations == b.iterations
    torch.testing.assert_close(a.v, b.v, rtol=1e-4, atol=1e-4)


def test_warm_start_converges_in_fewer_iterations():
    g = torch.Generator().manual_seed(5)
    logits = torch.randn(1000, 20, generator=g)
    cold = sinkhorn_labels(logits, lam=25.0, tol=1e-3)
    nudged = logits + 0.01 * torch.randn(1000, 20, generator=g)  # the next label step sees similar logits
    warm = sinkhorn_labels(nudged, lam=25.0, tol=1e-3, v0=cold.v)
    again = sinkhorn_labels(nudged, lam=25.0, tol=1e-3)
    assert warm.iterations < again.iterations
    assert (warm.labels == again.labels).float().mean() > 0.99


def test_rejects_a_vector():
    with pytest.raises(ValueError, match="N x K"):
        sinkhorn_log(torch.zeros(5))


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_stabilized_iteration_agrees_with_the_log_domain_one(scale):
    g = torch.Generator().manual_seed(6)
    logits = torch.randn(800, 25, generator=g) * scale
    fast = sinkhorn_labels(logits, lam=25.0, tol=1e-4, max_iters=20000)
    ref = sinkhorn_labels(logits, lam=25.0, tol=1e-4, max_iters=20000, mode="log")
    assert (fast.labels == ref.labels).float().mean() > 0.99
    assert fast.error < 1e-4


def test_a_column_no_image_prefers_still_gets_its_share():
    # class 0 is far less likely than the others for every image: P^25 of that column underflows to zero
    logits = torch.randn(300, 6, generator=torch.Generator().manual_seed(7))
    logits[:, 0] -= 8.0
    assert (torch.softmax(logits, 1)[:, 0] ** 25 * 300).max() < 1e-38
    res = sinkhorn_labels(logits, lam=25.0, tol=1e-3, max_iters=20000)
    assert torch.isfinite(res.v).all() and res.error < 1e-3
    assert int((res.labels == 0).sum()) > 0
