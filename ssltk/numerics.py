"""Numerics that methods and evaluators share: k-means (DeepCluster's and SeLa's initial pseudo-labels, the
clustering evaluator) and principal axes (DeepCluster's PCA whitening, the kNN evaluator's PCA).

A public module: plugins import these from here (``ssltk.numerics``), not from the evaluators.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor

from .errors import SsltkError

__all__ = ["kmeans", "pca_project", "principal_axes"]


def kmeans(x: Tensor, k: int, iters: int = 100, seed: int = 0, tol: float = 1e-6, n_init: int = 1):
    """Batched Lloyd's k-means with k-means++ seeding, on x's device; returns (labels, centroids, inertia).

    Distances are computed in blocks of rows, so N x k never has to fit at once on large N."""
    if k < 1 or k > x.shape[0]:
        raise SsltkError(f"k-means needs 1 <= k <= N, got k={k}, N={x.shape[0]}")
    x = x.float()
    g = torch.Generator(device="cpu").manual_seed(seed)
    best = None
    for _ in range(n_init):
        cent = _kmeans_pp(x, k, g)
        prev = math.inf
        for _ in range(iters):
            labels, dist = _assign(x, cent)
            inertia = float(dist.sum())
            sums = torch.zeros_like(cent).index_add_(0, labels, x)
            counts = torch.bincount(labels, minlength=k).to(x.dtype)
            empty = counts == 0
            cent = torch.where(empty[:, None], cent, sums / counts.clamp_min(1)[:, None])
            if empty.any():  # an empty cluster restarts at the points farthest from their centroids
                far = dist.topk(int(empty.sum())).indices
                cent[empty] = x[far]
            if prev - inertia <= tol * max(abs(prev), 1.0) and not empty.any():
                break
            prev = inertia
        labels, dist = _assign(x, cent)
        inertia = float(dist.sum())
        if best is None or inertia < best[2]:
            best = (labels, cent, inertia)
    return best


def _assign(x: Tensor, cent: Tensor, chunk: int = 16384):
    labels, dists = [], []
    c2 = (cent * cent).sum(1)
    for s in range(0, x.shape[0], chunk):
        xb = x[s : s + chunk]
        d = (xb * xb).sum(1, keepdim=True) - 2 * xb @ cent.T + c2
        m, i = d.min(1)
        labels.append(i)
        dists.append(m.clamp_min(0))
    return torch.cat(labels), torch.cat(dists)


def _kmeans_pp(x: Tensor, k: int, g: torch.Generator) -> Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with 2 + log k candidates per step as scikit-learn
    does): plain k-means++ too often puts two seeds in one well-separated blob, which Lloyd's steps never undo."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=g))
    cent = [x[first]]
    d = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        total = d.sum()
        probs = (d / total).cpu() if total > 0 else torch.full((n,), 1.0 / n)
        cand = torch.multinomial(probs, trials, replacement=True, generator=g).to(x.device)
        cand_d = torch.minimum(d[None, :], torch.cdist(x[cand], x).pow(2))  # (trials, N)
        best = int(cand_d.sum(1).argmin())
        cent.append(x[cand[best]])
        d = cand_d[best]
    return torch.stack(cent)


def principal_axes(x: Tensor, dim: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Mean (1, D), the top ``dim`` principal directions (D, dim) and their variances (dim,) of the rows of ``x``,
    from the eigendecomposition of the D x D covariance in float64 (cheap for the feature sizes here)."""
    xd = x.double()
    mean = xd.mean(0, keepdim=True)
    cov = (xd - mean).T @ (xd - mean) / max(x.shape[0] - 1, 1)
    evals, evecs = torch.linalg.eigh(cov)
    order = evals.argsort(descending=True)[: min(dim, x.shape[1])]
    return mean, evecs[:, order], evals[order].clamp_min(0)


def pca_project(train: Tensor, test: Tensor, dim: int) -> Tuple[Tensor, Tensor]:
    """Both feature sets projected on the top ``dim`` principal directions of the (centred) training features."""
    if dim >= train.shape[1]:
        return train, test
    mean, basis, _ = principal_axes(train, dim)
    mean, basis = mean.to(train.dtype), basis.to(train.dtype)
    return (train - mean) @ basis, (test - mean) @ basis
