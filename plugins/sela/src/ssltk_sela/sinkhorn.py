"""Sinkhorn-Knopp for SeLa's label assignment (paper 004, section 3.1, eq. 6-8), in the log domain and chunked.

The assignment Q (N x K, rows are images) minimises <Q, -log P> + (1/lambda) KL(Q || r c^T) over the transport
polytope with row sums 1/N and column sums 1/K (equipartition, eq. 7). Its solution is
Q = diag(alpha) P^lambda diag(beta) (eq. 8), found by alternating alpha_i <- [P^lambda beta]_i^-1 and
beta_y <- [alpha^T P^lambda]_y^-1 (Cuturi 2013). Here alpha and beta live in the log domain as ``u`` (N) and ``v``
(K), so lambda = 25 is safe in float32: P^lambda underflows for every class but the likeliest, and its inverse
overflows, long before float64 runs out, while log-sum-exp never leaves a moderate range.

Memory: the N x K matrix lambda * log P is held once, in float32 (1,281,167 x 3,000 is 15.4 GB, against 31 GB for
the authors' float64 P^lambda), with the kernel E of the stabilised iteration beside it; both buffers are reused
from head to head (``ssltk_sela.budget`` writes the whole budget down). Distribution: the row
update is local to a row, and the column update's log-sum-exp over N is the only reduction (a max and a sum per
column); with ``distributed=True`` both go through ``torch.distributed.all_reduce``, so each rank holds only its
own rows and gets the labels of a single process on the concatenated logits.

Stopping: the authors stop when sum_y |c_y / c_y' - 1| < 1e-2; c_y / c_y' is K times the current column sum, so
the same marginal error, sum_y |K col_y - 1|, is computed here for free at every column update.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass
class SinkhornResult:
    """Labels (N,) = argmax_y Q_iy, the log scalings ``u`` (N) and ``v`` (K) for a warm start, the iterations run
    and the final marginal error sum_y |K col_y - 1|."""

    labels: Tensor
    u: Tensor
    v: Tensor
    iterations: int
    error: float


def _all_reduce(t: Tensor, op: str, distributed: bool) -> Tensor:
    if distributed:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t


def scaled_log_probs(logits: Tensor, lam: float, chunk: int = 65536, out: Optional[Tensor] = None) -> Tensor:
    """lambda * log_softmax(logits) in float32, chunk by chunk (``out`` may be ``logits`` itself to save memory)."""
    return head_scaled_log_probs(logits, None, lam, chunk, out)


def head_scaled_log_probs(features: Tensor, head, lam: float, chunk: int = 65536,
                          out: Optional[Tensor] = None) -> Tensor:
    """lambda * log_softmax(head(features)) in float32, formed a chunk of rows at a time straight from the features
    (kept in any precision), so the N x K logits never exist beside it; ``out`` reuses a buffer across heads.
    ``head`` None takes ``features`` as the logits themselves."""
    n, k = features.shape[0], (features.shape[1] if head is None else head.out_features)
    if head is None:
        head = lambda z: z  # noqa: E731
    out = torch.empty((n, k), dtype=torch.float32, device=features.device) if out is None else out[:n]
    for s in range(0, n, chunk):
        out[s : s + chunk] = torch.log_softmax(head(features[s : s + chunk].float()), dim=1) * lam
    return out


def _row_update(a: Tensor, v: Tensor, log_n: float, chunk: int) -> Tensor:
    u = torch.empty(a.shape[0], dtype=torch.float32, device=a.device)
    for s in range(0, a.shape[0], chunk):
        u[s : s + chunk] = -log_n - torch.logsumexp(a[s : s + chunk] + v, dim=1)
    return u


def _column_lse(a: Tensor, u: Tensor, chunk: int, distributed: bool) -> Tensor:
    """log sum_i exp(a_iy + u_i) for every column y, stable over chunks (and ranks)."""
    k = a.shape[1]
    col_max = torch.full((k,), -math.inf, dtype=torch.float32, device=a.device)
    for s in range(0, a.shape[0], chunk):
        col_max = torch.maximum(col_max, (a[s : s + chunk] + u[s : s + chunk, None]).amax(0))
    col_max = _all_reduce(col_max, "max", distributed)
    safe = torch.where(torch.isfinite(col_max), col_max, torch.zeros_like(col_max))
    total = torch.zeros(k, dtype=torch.float32, device=a.device)
    for s in range(0, a.shape[0], chunk):
        total += (a[s : s + chunk] + u[s : s + chunk, None] - safe).exp().sum(0)
    total = _all_reduce(total, "sum", distributed)
    return total.log() + safe


def _kernel(a: Tensor, u: Tensor, v: Tensor, log_n: float, chunk: int, out: Optional[Tensor]) -> Tensor:
    """E = exp(a + u + v + log N): the current plan Q times N (rows sum to 1 right after a row update)."""
    out = torch.empty_like(a) if out is None else out
    for s in range(0, a.shape[0], chunk):
        torch.exp(a[s : s + chunk] + (u[s : s + chunk, None] + log_n) + v, out=out[s : s + chunk])
    return out


def sinkhorn_log(a: Tensor, max_iters: int = 1000, tol: float = 1e-2, chunk: int = 65536,
                 v0: Optional[Tensor] = None, distributed: bool = False, absorb_at: float = 20.0,
                 mode: str = "stabilized", kernel: Optional[Tensor] = None) -> SinkhornResult:
    """Solve eq. 7 for ``a = lambda * log P`` (N x K, float32; this rank's rows when ``distributed``).

    ``v0`` warm-starts the column scalings (a previous result's ``v``); otherwise they start uniform, as in the
    authors' code. Iterates until sum_y |K col_y - 1| < ``tol`` (the paper's criterion) or ``max_iters``.

    ``mode="stabilized"`` (default) runs the cheap iteration of eq. 8 -- two matrix-vector products with a kernel
    E = exp(a + u + v) -- and absorbs the scalings into the log-domain ``u``, ``v`` (recomputing E) whenever one
    leaves [e^-absorb_at, e^absorb_at], so float32 never overflows (Schmitzer 2019, "stabilized sparse scaling").
    A column whose kernel entries all underflow takes one exact log-domain update instead. ``mode="log"`` does
    every iteration in the log domain: slower (exponentials every iteration), the reference for the tests.
    ``kernel`` is an N x K float32 buffer for E, reused across calls (SeLa's heads) instead of allocated each time.
    """
    if a.dim() != 2:
        raise ValueError(f"expected an N x K matrix, got shape {tuple(a.shape)}")
    if mode not in ("stabilized", "log"):
        raise ValueError(f"mode must be stabilized or log, got {mode!r}")
    n_local, k = a.shape
    n_total = torch.tensor(float(n_local), device=a.device)
    n = int(_all_reduce(n_total, "sum", distributed).item())
    log_n, log_k = math.log(n), math.log(k)
    v = (v0.to(a.device, torch.float32).clone() if v0 is not None
         else torch.zeros(k, dtype=torch.float32, device=a.device))
    u = _row_update(a, v, log_n, chunk)
    if mode == "log":
        err, it = math.inf, 0
        for it in range(1, max_iters + 1):
            lse = _column_lse(a, u, chunk, distributed)
            err = float((k * (v + lse).exp() - 1).abs().sum())  # column sums are exp(v + lse)
            if err < tol:
                break
            v = -log_k - lse
            u = _row_update(a, v, log_n, chunk)
    else:
        u, v, it, err = _stabilized(a, u, v, log_n, log_k, n, k, max_iters, tol, chunk, distributed, absorb_at,
                                    kernel)
    labels = torch.empty(n_local, dtype=torch.long, device=a.device)
    for s in range(0, n_local, chunk):
        labels[s : s + chunk] = (a[s : s + chunk] + v).argmax(1)
    return SinkhornResult(labels, u, v, it, err)


def _stabilized(a, u, v, log_n, log_k, n, k, max_iters, tol, chunk, distributed, absorb_at, kernel=None):
    # most kernel entries of a peaked P^lambda are below float32's normal range: denormal arithmetic is many
    # times slower on CPUs, and those entries are negligible, so they are flushed to zero while iterating
    flush = torch.set_flush_denormal(True)
    try:
        return _stabilized_loop(a, u, v, log_n, log_k, n, k, max_iters, tol, chunk, distributed, absorb_at, kernel)
    finally:
        if flush:
            torch.set_flush_denormal(False)


def _stabilized_loop(a, u, v, log_n, log_k, n, k, max_iters, tol, chunk, distributed, absorb_at, kernel=None):
    n_local = a.shape[0]
    err, it = math.inf, 0
    kern = _kernel(a, u, v, log_n, chunk, None if kernel is None else kernel[:n_local])
    r = torch.ones(n_local, dtype=torch.float32, device=a.device)
    c = torch.ones(k, dtype=torch.float32, device=a.device)
    for it in range(1, max_iters + 1):
        col = _all_reduce(kern.T @ r, "sum", distributed)  # N times the column sums of Q, over c
        # every rank must take the same branch (a rank absorbing alone would mix two parametrisations of Q in
        # the next all-reduce), so the decisions on local rows are all-reduced too
        row_lost = _all_reduce((~torch.isfinite(r).all()).float(), "max", distributed)
        if bool((col <= 0).any()) or bool(row_lost > 0):
            # a column (or row) lost all its mass to underflow: one exact log-domain step, then a fresh kernel
            u = _row_update(a, v, log_n, chunk)
            v = -log_k - _column_lse(a, u, chunk, distributed)
            u = _row_update(a, v, log_n, chunk)
            kern = _kernel(a, u, v, log_n, chunk, kern)
            r.fill_(1.0)
            c.fill_(1.0)
            continue
        err = float((k / n * c * col - 1).abs().sum())
        if err < tol:
            break
        c = (n / k) / col
        r = 1.0 / (kern @ c)
        drift = _all_reduce(torch.maximum(r.log().abs().max(), c.log().abs().max()), "max", distributed)
        if float(drift) > absorb_at:
            u, v = u + r.log(), v + c.log()
            kern = _kernel(a, u, v, log_n, chunk, kern)
            r.fill_(1.0)
            c.fill_(1.0)
    return u + r.log(), v + c.log(), it, err


def sinkhorn_labels(logits: Tensor, lam: float = 25.0, max_iters: int = 1000, tol: float = 1e-2,
                    chunk: int = 65536, v0: Optional[Tensor] = None, distributed: bool = False,
                    mode: str = "stabilized") -> SinkhornResult:
    """SeLa's self-labelling step from a head's logits (N x K): P = softmax(logits), Q from eq. 8, labels argmax."""
    return sinkhorn_log(scaled_log_probs(logits, lam, chunk), max_iters, tol, chunk, v0, distributed, mode=mode)


def assignment(a: Tensor, result: SinkhornResult) -> Tensor:
    """The full Q = exp(a + u + v) (N x K), for tests and small problems only."""
    return (a + result.u[:, None] + result.v[None, :]).exp()


#: the widest range of ``scores / epsilon`` that the scaled exponential domain takes in float32: exp(-60) is far above
#: float32's smallest normal number, and the scalings of a few iterations stay within range around it
EXP_DOMAIN_RANGE = 60.0


@torch.no_grad()
def sinkhorn_codes(scores: Tensor, epsilon: float = 0.05, iterations: int = 3, distributed: bool = False,
                   chunk: int = 65536) -> Tensor:
    """SwAV's online codes (Caron et al. 2020, section 3.1, eq. 3; the authors' ``distributed_sinkhorn``): the same
    transport problem as SeLa's eq. 7 on one batch, with ``a = scores / epsilon`` for the B x K prototype scores,
    solved by a fixed number of iterations from uniform scalings, prototypes (columns) first, then samples (rows).
    Returns Q scaled so that every row sums to 1 (the soft codes), float32. ``distributed`` sums over every
    process's rows, so B is the global batch, as the authors' all-reduces do.

    Cosine scores at epsilon 0.05 span at most 40, so the kernel exp(a - max a) is formed once and the iterations are
    matrix-vector products, as the authors' are (measured 10x faster on a CPU than exponentials every iteration);
    a wider range (a smaller epsilon, unnormalised scores) takes this module's log-domain updates instead, where
    nothing can overflow."""
    a = scores.float() / epsilon
    n = a.shape[0]
    if distributed:
        n = int(_all_reduce(torch.tensor(float(n), device=a.device), "sum", True).item())
    k = a.shape[1]
    top = _all_reduce(a.max().reshape(1), "max", distributed)
    low = -_all_reduce((-a.min()).reshape(1), "max", distributed)
    if float(top - low) <= EXP_DOMAIN_RANGE:
        kern = torch.exp(a - top)
        r = torch.ones(a.shape[0], dtype=torch.float32, device=a.device)
        for _ in range(iterations):
            c = 1.0 / (k * _all_reduce(kern.T @ r, "sum", distributed))
            r = 1.0 / (n * (kern @ c))
        return kern * r[:, None] * c[None, :] * n
    log_n, log_k = math.log(n), math.log(k)
    u = torch.zeros(a.shape[0], dtype=torch.float32, device=a.device)
    for _ in range(iterations):
        v = -log_k - _column_lse(a, u, chunk, distributed)
        u = _row_update(a, v, log_n, chunk)
    return (a + u[:, None] + v[None, :] + log_n).exp()
