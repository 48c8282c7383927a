"""Image retrieval in representation space (paper 000, appendix A.8, B.9 and B.10).

Queries are sampled from the test split (``queries_per_class`` per class, seeded) and the gallery is the labelled
training split. For each query the top-k gallery images by Euclidean distance are retrieved. Retrieval accuracy at
k is the fraction of the k retrieved images that share the query's class, averaged over queries (appendix B.10:
67.8% at top-10 for relational reasoning, ResNet-32, CIFAR-10). The confusion matrix at k counts, for the queries
of class c, the retrieved images of class c' divided by k, so that row c sums to the number of class-c queries.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from ..data.base import num_classes as count_classes
from ..data.stream import pixels
from ..errors import SsltkError
from ..interfaces import Backbone, EvalResult, Evaluator
from .features import extract_features
from .plots import confusion_heatmap, image_grid
from .results import write_results


def retrieve(queries: Tensor, gallery: Tensor, k: int, chunk: int = 1024) -> Tensor:
    """Indices (Q, k) of the k gallery rows nearest to each query (Euclidean), nearest first."""
    k = min(k, gallery.shape[0])
    g2 = (gallery * gallery).sum(1)
    out = []
    for s in range(0, queries.shape[0], chunk):
        q = queries[s : s + chunk]
        d = (q * q).sum(1, keepdim=True) - 2 * q @ gallery.T + g2  # squared distances: same order, no sqrt
        out.append(d.topk(k, dim=1, largest=False).indices)
    return torch.cat(out) if out else torch.empty(0, k, dtype=torch.long)


def retrieval_accuracy(query_labels: Tensor, retrieved_labels: Tensor, k: int) -> float:
    """Mean over queries of the fraction (%) of the top-k retrieved images with the query's class."""
    hits = retrieved_labels[:, :k] == query_labels[:, None]
    return float(hits.float().mean().item() * 100.0)


def retrieval_confusion(query_labels: Tensor, retrieved_labels: Tensor, k: int, num_classes: int) -> Tensor:
    """(C, C): row c holds, over the class-c queries, the retrieved images of each class divided by k."""
    top = retrieved_labels[:, :k]
    conf = torch.zeros(num_classes, num_classes, dtype=torch.float64)
    rows = query_labels[:, None].expand_as(top).reshape(-1)
    conf.index_put_((rows, top.reshape(-1)), torch.ones(rows.numel(), dtype=torch.float64), accumulate=True)
    return conf / top.shape[1]


def sample_queries(labels: Tensor, per_class: int, seed: int) -> Tensor:
    """Up to ``per_class`` indices of each class (the paper samples 500 per class), seeded, sorted."""
    g = torch.Generator().manual_seed(seed)
    picks = []
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        picks.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
    return torch.cat(picks).sort().values


class RetrievalEval(Evaluator):
    """Top-k retrieval accuracy (%) at 10/100/1000, per-class confusion matrices and a PNG of queries with their
    top-10 images (paper 000, B.9-B.10)."""

    def __init__(self, ks: Sequence[int] = (10, 100, 1000), queries_per_class: int = 500, grid_queries: int = 25,
                 grid_k: int = 10, split: str = "auto", seed: int = 0, feature_batch_size: int = 512):
        self.ks, self.queries_per_class, self.grid_queries = sorted(int(k) for k in ks), queries_per_class, grid_queries
        if not self.ks or self.ks[0] < 1:
            raise SsltkError(f"--ks must list neighbour counts of at least 1, got {list(ks)!r}")
        self.grid_k, self.split, self.seed, self.feature_batch_size = grid_k, split, seed, feature_batch_size

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "retrieval") -> EvalResult:
        gallery, test, split = data.eval_pair(self.split)
        q_idx = sample_queries(test.labels, self.queries_per_class, self.seed)
        feats = lambda imgs: extract_features(backbone, imgs, data.mean, data.std, device, self.feature_batch_size)
        g_x, q_x = feats(gallery.images).to(device), feats(test.images[q_idx]).to(device)
        q_y = test.labels[q_idx]
        k_max = min(max(self.ks + [self.grid_k]), len(gallery))
        idx = retrieve(q_x, g_x, k_max).cpu()
        r_y = gallery.labels[idx]
        num_classes = count_classes(gallery, test)
        metrics: Dict[str, float] = {"num_queries": float(len(q_idx)), "num_gallery": float(len(gallery))}
        confusions = {}
        for k in self.ks:
            if k > len(gallery):
                continue
            metrics[f"accuracy@{k}"] = retrieval_accuracy(q_y, r_y, k)
            confusions[k] = retrieval_confusion(q_y, r_y, k, num_classes)
        artifacts = {}
        if run_dir is not None:
            out = Path(run_dir) / name
            names = test.classes or gallery.classes
            for k, conf in confusions.items():
                artifacts[f"confusion@{k}"] = confusion_heatmap(
                    conf.numpy(), names, out / f"confusion_top{k}.png",
                    f"retrieval top-{k}: % of retrieved images per class (accuracy {metrics[f'accuracy@{k}']:.1f}%)")
            g = torch.Generator().manual_seed(self.seed + 1)
            show = torch.randperm(len(q_idx), generator=g)[: self.grid_queries]
            rows: List[Tensor] = [torch.cat([pixels(test.images, q_idx[i : i + 1]),
                                             pixels(gallery.images, idx[i, : self.grid_k])])
                                  for i in show.tolist()]
            artifacts["grid"] = image_grid(rows, out / "queries_top10.png")
            write_results(Path(run_dir), name, dict(metrics, split=split,
                                                    confusion={str(k): c.tolist() for k, c in confusions.items()},
                                                    artifacts={k: str(v) for k, v in artifacts.items()}))
        return EvalResult(metrics, artifacts)
