"""Linear evaluation, the protocol of paper 002 (section 4, "Linear evaluation"; appendix A.4).

The backbone is frozen in eval mode, features are detached, a new Linear(D, C) is trained with Adam (lr 1e-3) for
100 epochs at batch 128 with no augmentation, and the test split is scored once at the end (no model selection on
it). Because the backbone is frozen and there is no augmentation, the features are extracted once and cached; the
classifier then trains on the cached tensors, which gives the same result as running the backbone every epoch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..interfaces import Backbone, EvalResult, Evaluator
from .features import extract_features


def train_linear(train_x: Tensor, train_y: Tensor, num_classes: int, epochs: int = 100, batch_size: int = 128,
                 lr: float = 1e-3, seed: int = 0, device: Optional[torch.device] = None) -> nn.Linear:
    """Fit Linear(D, C) on fixed features with Adam and cross-entropy (mini-batches reshuffled every epoch)."""
    device = device or train_x.device
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clf = nn.Linear(train_x.shape[1], num_classes).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=lr)
    x, y = train_x.to(device), train_y.to(device)
    n = x.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            loss = F.cross_entropy(clf(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf


@torch.no_grad()
def accuracy(clf: nn.Module, x: Tensor, y: Tensor) -> float:
    pred = clf(x.to(next(clf.parameters()).device)).argmax(1).cpu()
    return float((pred == y.cpu()).float().mean().item() * 100.0)


class LinearEval(Evaluator):
    """Top-1 accuracy (%) of a linear classifier on frozen features (paper 002 protocol).

    ``split`` picks the test split: ``auto`` uses the held-out validation split when the dataset has one, else the
    official test set.
    """

    def __init__(self, epochs: int = 100, batch_size: int = 128, lr: float = 1e-3, split: str = "auto",
                 seed: int = 0, feature_batch_size: int = 512):
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.split, self.seed, self.feature_batch_size = split, seed, feature_batch_size

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "linear") -> EvalResult:
        train, test, split = data.eval_pair(self.split)
        feats = lambda s: extract_features(backbone, s.images, data.mean, data.std, device, self.feature_batch_size)
        tr_x, te_x = feats(train), feats(test)
        num_classes = int(max(train.labels.max(), test.labels.max()).item()) + 1
        clf = train_linear(tr_x, train.labels, num_classes, self.epochs, self.batch_size, self.lr, self.seed, device)
        metrics = {
            "accuracy": accuracy(clf, te_x, test.labels),
            "train_accuracy": accuracy(clf, tr_x, train.labels),
            "num_train": float(len(train)),
            "num_test": float(len(test)),
        }
        result = EvalResult(metrics)
        if run_dir is not None:
            write_results(Path(run_dir), name, dict(metrics, split=split, epochs=self.epochs))
        return result


def write_results(run_dir: Path, key: str, values: dict) -> Path:
    """Merge ``values`` under ``key`` into ``run_dir/results.json`` (atomically)."""
    import os
    import tempfile

    path = run_dir / "results.json"
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = values
    run_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".results.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)
    return path
