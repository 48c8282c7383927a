"""SeLa: self-labelling via simultaneous clustering and representation learning (Asano, Rupprecht & Vedaldi,
ICLR 2020; paper 004).

T linear heads of K clusters each ("SeLa [K x T]", section 3.5) sit on the backbone; the loss is the mean of the
heads' cross-entropies against the current self-labels (eq. 6, step 1). The labels start balanced and random
(i mod K, shuffled per head, appendix A.1) and are re-optimised at fractions t_i = (i / (M - 1))^2 of training
(appendix A.1): the engine's whole-dataset pass gives the backbone's features of one augmented view of every training
image (P is an expectation over augmentations, section 3.4; the authors' cifar.py takes it from the augmented loader),
each head turns them into logits, and Sinkhorn-Knopp (eq. 8) finds the equipartitioned assignment (step 2).
``label_step: kmeans`` replaces Sinkhorn with k-means on the features, the comparison of section 4.5 / Table 8.

Under torchrun each rank extracts the features of its own N / world rows and Sinkhorn runs distributed (the
column reductions all-reduced, section 3.2's "the algorithm is easily parallelised"); the label rows are then
all-gathered, so every rank holds the labels of the whole dataset for its batches.

Defaults are the CIFAR recipe of the authors' code (shared/reference/implementation-notes.md): [128 x 10],
SGD lr 0.03, momentum 0.9, weight decay 5e-4; lambda = 25 as in the paper (the CIFAR code uses 10). The authors'
``scripts/cifar.sh`` / ``cifar.py`` differ from the paper's text in two more ways, which the paper protocol
(``ssltk reproduce sela-small``) follows and the defaults do not: 400 label optimisations spaced linearly over
400 epochs (``spacing: linear``), each re-labelling one head in turn (``label_heads: cycle``, head = epoch mod T),
not every head; and the learning rate divided by 10 at 60% and 80% of the epochs.

At ImageNet scale (section 3.5: N = 1,281,167, [3k x 10]) the label step runs one head at a time over two reused
N x K float32 buffers (lambda log P and the Sinkhorn kernel), forming each head's logits from the features a chunk
at a time; ``label_features: fp16`` keeps the features in half precision (the heads still compute in float32).
``ssltk_sela.budget.label_step_budget`` gives the memory this takes: 42 GiB for AlexNet's 4096-d features, so the
step fits one 80 GB GPU. The authors' code instead holds P in float64 per head on the CPU (section 3.2).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssltk import DataSpec, FitContext, Objective, ObjectiveOutput, ViewBatch

from ssltk.distributed import all_gather_uneven, broadcast_tensor

from .sinkhorn import head_scaled_log_probs, sinkhorn_log
from .recipes import SelaAugment

#: precisions the features of the label step may be held in
FEATURE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def label_epochs(epochs: int, m: int, spacing: str = "quadratic") -> List[int]:
    """The (0-based) epochs whose start re-optimises the labels: the first epoch at or after each t_i * epochs,
    t_i = (i / (M - 1))^2 for i = 1..M-1 (``quadratic``, the paper's appendix A.1) or t_i = i / (M - 1) (``linear``,
    the ``np.linspace`` of the authors' ``cifar.py``), keeping those inside training (t_i = 1 would be after the last
    step). Label steps that fall in the same epoch are one step."""
    if m < 2:
        return []
    power = 2 if spacing == "quadratic" else 1
    out = sorted({math.ceil((i / (m - 1)) ** power * epochs - 1e-9) for i in range(1, m)})
    return [e for e in out if e < epochs]


def balanced_random_labels(n: int, k: int, heads: int, seed: int) -> Tensor:
    """(T, N) labels, each head an equipartition i mod K under its own random permutation (appendix A.1)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.arange(n) % k
    return torch.stack([base[torch.randperm(n, generator=g)] for _ in range(heads)])


class SelaViews(Objective):
    """The base of both SeLa objectives: one view per image with SeLa's augmentation (appendix A.1), the CIFAR
    optimiser, and the loss of section 3.5, the mean over heads of each head's cross-entropy on its label row."""

    trainer_defaults = {"optimizer": "sgd", "lr": 0.03, "momentum": 0.9, "weight_decay": 5e-4}

    @property
    def num_views(self) -> int:
        return 1

    def augmentation(self, spec: DataSpec):
        return SelaAugment().configure(spec)

    @staticmethod
    def heads_loss(heads: nn.ModuleList, z: Tensor, table: Tensor, batch: ViewBatch) -> Tensor:
        idx = batch.index.to(table.device).repeat(batch.num_views)
        return torch.stack([F.cross_entropy(head(z), table[t, idx]) for t, head in enumerate(heads)])


class SelaObjective(SelaViews):
    """SeLa [K x T]: cross-entropy on self-labels that Sinkhorn-Knopp re-assigns under equipartition (paper 004)."""

    def __init__(self, in_dim: int, clusters: int = 128, heads: int = 10, label_steps: int = 20, lam: float = 25.0,
                 tol: float = 1e-2, max_iters: int = 1000, warm_start: bool = False, label_step: str = "sinkhorn",
                 chunk: int = 65536, spacing: str = "quadratic", label_heads: str = "all",
                 label_features: str = "fp32"):
        super().__init__(in_dim)
        if clusters < 2 or heads < 1:
            raise ValueError(f"SeLa needs clusters >= 2 and heads >= 1, got [{clusters} x {heads}]")
        if spacing not in ("quadratic", "linear"):
            raise ValueError(f"spacing must be quadratic (the paper) or linear (the CIFAR code), got {spacing!r}")
        if label_heads not in ("all", "cycle"):
            raise ValueError(f"label_heads must be all or cycle (one head per label step), got {label_heads!r}")
        if label_features not in FEATURE_DTYPES:
            raise ValueError(f"label_features must be one of {', '.join(FEATURE_DTYPES)}, got {label_features!r}")
        self.spacing, self.label_heads, self.label_features = spacing, label_heads, label_features
        if label_step not in ("sinkhorn", "kmeans"):
            raise ValueError(f"label_step must be sinkhorn or kmeans, got {label_step!r}")
        self.clusters, self.num_heads, self.label_steps = clusters, heads, label_steps
        self.lam, self.tol, self.max_iters, self.warm_start = lam, tol, max_iters, warm_start
        self.label_step, self.chunk = label_step, chunk
        self.heads = nn.ModuleList(nn.Linear(in_dim, clusters) for _ in range(heads))
        # labels and the Sinkhorn column scalings are state: they go into checkpoints and resume with the run
        self.register_buffer("labels", torch.zeros(heads, 0, dtype=torch.long))
        self.register_buffer("scalings", torch.zeros(heads, clusters))
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))
        self.last_stats: dict = {}

    def on_fit_start(self, ctx: FitContext) -> None:
        if self.labels.shape[1] != ctx.num_train:  # a resumed run then loads its own labels over these
            if ctx.num_train < self.clusters:
                raise ValueError(f"{ctx.num_train} training images cannot fill {self.clusters} clusters")
            self.labels = balanced_random_labels(ctx.num_train, self.clusters, self.num_heads,
                                                 ctx.seed).to(ctx.device)
        self._schedule = set(label_epochs(ctx.epochs, self.label_steps, self.spacing))

    def on_epoch_start(self, ctx: FitContext, epoch: int) -> None:
        if epoch not in self._schedule:
            return
        heads = [epoch % self.num_heads] if self.label_heads == "cycle" else None
        # P is an expectation over augmentations (section 3.4), and the authors' cifar.py computes it from the
        # augmented loader: one augmented view of every image, drawn afresh at each label step
        seed = self.label_seed(ctx.seed, epoch)
        if ctx.world_size > 1 and self.label_step == "sinkhorn":
            self.optimise_labels(ctx.extract_features(gather=False, augment=True, seed=seed), distributed=True,
                                 heads=heads)
        else:
            self.optimise_labels(ctx.extract_features(augment=True, seed=seed), heads=heads)

    @staticmethod
    def label_seed(run_seed: int, epoch: int) -> int:
        """The seed of the augmented views that the label step of ``epoch`` (0-based) labels."""
        return (run_seed * 1_000_003 + epoch * 7_919 + 911) % (2**63 - 1)

    @torch.no_grad()
    def optimise_labels(self, features: Tensor, distributed: bool = False, heads: Optional[List[int]] = None) -> None:
        """Step 2 of section 3.1 for every head (or only ``heads``; the others keep their labels), from (N, D)
        features of the augmented training images (with ``distributed``, this rank's contiguous rows of them;
        every rank calls it together)."""
        # features in the chosen precision (fp16 halves ImageNet's 21 GB at 4096-d); every head's logits are formed
        # from them a chunk at a time into one float32 buffer, and the Sinkhorn kernel reuses another
        features = features.to(self.labels.device, FEATURE_DTYPES[self.label_features])
        a = kern = None
        new, iters = [], []
        for t, head in enumerate(self.heads):
            if heads is not None and t not in heads:
                new.append(self.labels[t])
                continue
            if self.label_step == "kmeans":
                from ssltk.numerics import kmeans

                labels, _, _ = kmeans(F.normalize(features.float(), dim=1), self.clusters,
                                      seed=int(self.steps_done) * 1000 + t)
                new.append(broadcast_tensor(labels.to(self.labels.device)))  # rank 0's clustering for everyone
                continue
            a = head_scaled_log_probs(features, head, self.lam, self.chunk, out=a)
            if kern is None:
                kern = torch.empty_like(a)
            res = sinkhorn_log(a, self.max_iters, self.tol, self.chunk,
                               v0=self.scalings[t] if self.warm_start and int(self.steps_done) > 0 else None,
                               distributed=distributed, kernel=kern)
            self.scalings[t] = res.v
            new.append(all_gather_uneven(res.labels.to(self.labels.device)) if distributed else res.labels)
            iters.append(res.iterations)
        changed = (torch.stack(new) != self.labels).float().mean().item()
        self.labels = torch.stack(new)
        self.steps_done += 1
        self.last_stats = {"label_changes": changed, "sinkhorn_iters": float(sum(iters) / max(len(iters), 1))}

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        losses = self.heads_loss(self.heads, backbone(batch.views), self.labels, batch)
        loss = losses.mean()
        logs = {"ce_head0": losses[0].detach()}
        if self.last_stats:
            logs.update({k: torch.tensor(v) for k, v in self.last_stats.items()})
        return ObjectiveOutput(loss, logs)
