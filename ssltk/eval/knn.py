"""Weighted k-nearest-neighbour classification, the SeLa paper's protocol (paper 004, sections 4.4 and 4.5,
Tables 6 and 8; k = 50 and sigma = 0.1 from appendix A.1).

Embeddings are L2-normalised (optionally after PCA to ``pca_dim`` dimensions, fitted on the training features), the
k most cosine-similar training samples vote for their class with weight exp(sim / sigma), and the class with the
largest summed weight wins. Similarities are computed in blocks of test samples, so 50,000 x 10,000 never needs
more than ``chunk`` x N_train floats at once.

``k=200, sigma=0.1`` is the kNN the peers' CIFAR-10 benchmarks report (lightly's ``knn_predict`` with
``knn_k=200, knn_t=0.1``: the same cosine votes weighted by exp(sim / t)): ``ssltk eval knn --k 200``, and
``--trainer.knn_k 200`` for the monitor during training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import SsltkError, check_at_least
from ..data.base import num_classes as count_classes
from ..interfaces import Backbone, EvalResult, Evaluator
from ..numerics import pca_project, principal_axes  # noqa: F401  (principal_axes: its name here before)
from .features import extract_features
from .linear import topk_accuracy
from .results import write_results


def knn_predict(train: Tensor, train_labels: Tensor, test: Tensor, num_classes: int, k: int = 50,
                sigma: float = 0.1, chunk: int = 1024) -> Tensor:
    """Predicted classes (N_test,) by similarity-weighted votes of the ``k`` nearest training samples (cosine)."""
    return knn_votes(train, train_labels, test, num_classes, k, sigma, chunk).argmax(1)


def knn_votes(train: Tensor, train_labels: Tensor, test: Tensor, num_classes: int, k: int = 50,
              sigma: float = 0.1, chunk: int = 1024) -> Tensor:
    """The class votes (N_test, num_classes) behind :func:`knn_predict`, for top-k accuracies."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, train.shape[0])
    train_n = F.normalize(train.float(), dim=1)
    test_n = F.normalize(test.float(), dim=1)
    train_labels = train_labels.to(train_n.device).long()
    preds = []
    for start in range(0, test_n.shape[0], chunk):
        sim = test_n[start : start + chunk] @ train_n.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / sigma).exp()
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device, dtype=weights.dtype)
        votes.scatter_add_(1, train_labels[top_idx], weights)
        preds.append(votes)
    return torch.cat(preds) if preds else torch.empty(0, num_classes)


class KNNEval(Evaluator):
    """Weighted kNN top-1 accuracy (%) on frozen features (paper 004: cosine, exp(sim/sigma) votes, k=50, sigma=0.1)."""

    def __init__(self, k: int = 50, sigma: float = 0.1, pca_dim: Optional[int] = None, split: str = "auto",
                 chunk: int = 1024, feature_batch_size: int = 512):
        check_at_least(1, k=k, pca_dim=pca_dim, chunk=chunk, feature_batch_size=feature_batch_size)
        if not sigma > 0:
            raise SsltkError(f"--sigma must be > 0, got {sigma!r}")
        self.k, self.sigma, self.pca_dim, self.split = k, sigma, pca_dim, split
        self.chunk, self.feature_batch_size = chunk, feature_batch_size

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "knn") -> EvalResult:
        train, test, split = data.eval_pair(self.split)
        feats = lambda s: extract_features(backbone, s.images, data.mean, data.std, device, self.feature_batch_size)
        tr_x, te_x = feats(train).to(device), feats(test).to(device)
        if self.pca_dim:
            tr_x, te_x = pca_project(tr_x, te_x, self.pca_dim)
        num_classes = count_classes(train, test)
        votes = knn_votes(tr_x, train.labels, te_x, num_classes, self.k, self.sigma, self.chunk).cpu()
        metrics = {"accuracy": topk_accuracy(votes, test.labels, 1)}
        if num_classes > 5:
            metrics["accuracy_top5"] = topk_accuracy(votes, test.labels, 5)
        metrics.update(num_train=float(len(train)), num_test=float(len(test)))
        if run_dir is not None:
            write_results(Path(run_dir), name, dict(metrics, split=split, k=self.k, sigma=self.sigma,
                                                    pca_dim=self.pca_dim))
        return EvalResult(metrics)
