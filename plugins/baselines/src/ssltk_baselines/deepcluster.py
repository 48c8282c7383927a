"""DeepCluster (Caron et al. 2018) as in the relational-reasoning benchmark (paper 000, appendix A.5).

At the start of every epoch the backbone's features of every un-augmented training image (the engine's
whole-dataset pass; the public code extracts them from augmented images: **pitfall**,
shared/reference/implementation-notes.md) are PCA-whitened, L2-normalised and clustered by k-means into
k = 10 x the number of classes; the cluster ids become pseudo-labels. Batches are drawn uniformly over clusters
(each image weighted by one over its cluster's size), and the head Linear(D, 256) -> BatchNorm1d -> LeakyReLU ->
Linear(256, k), whose last layer is re-initialised every epoch from N(0, 0.01) with zero bias (DeepCluster's
``main.py``: ``top_layer.weight.data.normal_(0, 0.01)``), is trained with cross-entropy on the pseudo-labels.
Training images are cropped with padding 4 and flipped, the benchmark's recipe for DeepCluster (``datamanager.py``).

k-means backend, chosen by measurement: on the CPU, scikit-learn's KMeans (20 iterations, k-means++). On the
whole-dataset features of a trained Conv-4 (10,000 CIFAR-10 images, whitened to 64 dimensions, k = 100) it took
0.7-0.9 s against 2.6 s for ssltk's batched torch k-means, with a 4% lower objective (7,805 against 8,112). On
CUDA the torch implementation runs on the device, with no copy of the features to the host (``backend: auto``).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssltk import CropFlipAugment, DataSpec, FitContext, Objective, ObjectiveOutput, ViewBatch
from ssltk.distributed import broadcast_tensor, world
from ssltk.numerics import kmeans, principal_axes


def pca_whiten(x: Tensor, dim: int, eps: float = 1e-5) -> Tensor:
    """Project centred features on their top ``dim`` principal directions and scale each to unit variance."""
    mean, basis, variances = principal_axes(x, dim)
    return ((x.double() - mean) @ basis / (variances + eps).sqrt()).float()


class DeepClusterObjective(Objective):
    """k-means pseudo-labels from whitened features, re-clustered every epoch (Caron et al. 2018; paper 000, A.5)."""

    def __init__(self, in_dim: int, num_classes: Optional[int] = None, k: Optional[int] = None, pca_dim: int = 256,
                 hidden: int = 256, kmeans_iters: int = 20, backend: str = "auto"):
        super().__init__(in_dim)
        if k is None:
            if num_classes is None:
                raise ValueError("deepcluster needs k or num_classes (k = 10 x classes; the engine fills num_classes)")
            k = 10 * num_classes
        if k < 2:
            raise ValueError(f"k must be >= 2, got {k}")
        if backend not in ("auto", "sklearn", "torch"):
            raise ValueError(f"backend must be auto, sklearn or torch, got {backend!r}")
        self.backend = backend
        self.k, self.pca_dim, self.kmeans_iters = k, pca_dim, kmeans_iters
        self.body = nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.LeakyReLU())
        self.top = nn.Linear(hidden, k)
        self.register_buffer("pseudo", torch.zeros(0, dtype=torch.long))
        self._weights: Optional[Tensor] = None

    @property
    def num_views(self) -> int:
        return 1

    def augmentation(self, spec: DataSpec):
        return CropFlipAugment().configure(spec)

    def on_fit_start(self, ctx: FitContext) -> None:
        if ctx.num_train < self.k:
            raise ValueError(f"{ctx.num_train} training images cannot fill k = {self.k} clusters")
        self.pseudo = torch.zeros(ctx.num_train, dtype=torch.long, device=ctx.device)
        self._seed = ctx.seed

    @torch.no_grad()
    def cluster(self, features: Tensor, seed: int) -> Tensor:
        """Pseudo-labels of whitened, L2-normalised features, and the sampling weights that go with them."""
        x = F.normalize(pca_whiten(features, self.pca_dim), dim=1)
        use_torch = self.backend == "torch" or (self.backend == "auto" and self.pseudo.device.type == "cuda")
        if world()[0] > 0:  # under torchrun rank 0 clusters (the features are the same everywhere) and broadcasts
            labels = torch.zeros(x.shape[0], dtype=torch.long, device=self.pseudo.device)
        elif use_torch:
            labels, _, _ = kmeans(x.to(self.pseudo.device), self.k, self.kmeans_iters, seed=seed)
        else:
            from sklearn.cluster import KMeans

            km = KMeans(self.k, n_init=1, max_iter=self.kmeans_iters, random_state=seed % (2**31)).fit(x.cpu().numpy())
            labels = torch.as_tensor(km.labels_, dtype=torch.long, device=self.pseudo.device)
        labels = broadcast_tensor(labels)  # the identity in one process
        sizes = torch.bincount(labels, minlength=self.k).float()
        self._weights = 1.0 / sizes[labels]
        return labels

    def on_epoch_start(self, ctx: FitContext, epoch: int) -> None:
        self.pseudo = self.cluster(ctx.extract_features(), seed=ctx.seed * 1000 + epoch)
        # a fresh classifier every epoch: cluster ids are arbitrary and change meaning between clusterings
        g = torch.Generator().manual_seed(ctx.seed * 1000 + epoch)
        with torch.no_grad():
            self.top.weight.copy_(torch.empty_like(self.top.weight, device="cpu").normal_(0.0, 0.01, generator=g))
            self.top.bias.zero_()
        # the old classifier's Adam moments would steer the new one along directions of a clustering that is gone;
        # DeepCluster's authors build a fresh optimizer for it every epoch
        if ctx.reset_optimizer_state is not None:
            ctx.reset_optimizer_state(self.top.parameters())

    def sampling_weights(self) -> Optional[Tensor]:
        return self._weights

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        logits = self.top(self.body(backbone(batch.views)))
        idx = batch.index.to(self.pseudo.device).repeat(batch.num_views)
        target = self.pseudo[idx] if self.pseudo.numel() else torch.zeros_like(idx)
        return ObjectiveOutput(F.cross_entropy(logits, target))
