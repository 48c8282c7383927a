"""The online surrogate probe of the structured-MI paper (paper 003, section 4, "Surrogate", Figure 3).

Every ``every`` training iterations the linear classifier is trained for one more epoch (Adam 1e-3, batch 128)
on the current frozen features of labelled training images, and its training accuracy is logged to
``metrics.jsonl`` as a ``probe`` record. As in the paper ("we trained only the linear classifier for 1 epoch every
100 unsupervised iterations") it is one classifier with one optimizer, kept across probes.
``plot_probe_curves`` draws those curves for several runs (``ssltk plot-probe RUN...``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import torch
from torch import Tensor, nn

from .features import extract_features
from .linear import accuracy, seeded_linear, train_linear
from .plots import line_curves


class OnlineProbe:
    """Trains one Linear(D, C) for ``epochs`` more epoch(s) per call on frozen features of (up to ``size``)
    labelled training images."""

    def __init__(self, images: Tensor, labels: Tensor, mean, std, device: torch.device, size: Optional[int] = None,
                 epochs: int = 1, seed: int = 0):
        if size is not None and size < len(labels):
            pick = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
            images, labels = images[pick.to(images.device)], labels[pick.to(labels.device)]
        self.images, self.labels = images, labels.cpu()
        self.mean, self.std, self.device, self.epochs, self.seed = mean, std, device, epochs, seed
        self.num_classes = int(self.labels.max().item()) + 1
        self.clf: Optional[nn.Linear] = None
        self.opt: Optional[torch.optim.Optimizer] = None

    def __call__(self, backbone: nn.Module, step: int) -> float:
        x = extract_features(backbone, self.images, self.mean, self.std, self.device)
        if self.clf is None:
            self.clf = seeded_linear(x.shape[1], self.num_classes, self.seed, self.device)
            self.opt = torch.optim.Adam(self.clf.parameters(), lr=1e-3)
        train_linear(x, self.labels, self.num_classes, self.epochs, seed=self.seed + step, device=self.device,
                     clf=self.clf, opt=self.opt)
        return accuracy(self.clf, x, self.labels)


def read_probe_curve(run_dir: Path):
    """(steps, accuracies) of the probe records in a run's ``metrics.jsonl``."""
    from ..engine.metrics import read_metrics

    records = read_metrics(Path(run_dir), "probe")
    return [rec["step"] for rec in records], [rec["probe_train_acc"] for rec in records]


def plot_probe_curves(run_dirs: Sequence[Path], out: Path, names: Optional[Sequence[str]] = None) -> Path:
    """One training-accuracy curve per run, as paper 003's Figure 3."""
    from ..errors import SsltkError

    curves: Dict[str, tuple] = {}
    for i, run in enumerate(run_dirs):
        steps, accs = read_probe_curve(Path(run))
        if not steps:
            raise SsltkError(f"{run} has no probe records; train with --trainer.probe_every N")
        curves[names[i] if names else Path(run).name] = (steps, accs)
    return line_curves(curves, Path(out), "training iteration", "probe training accuracy (%)",
                       "online linear probe (1 epoch every N iterations)")
