"""Finetuning, the STL-10 protocol of paper 000, appendix A.6 (paper 002, Table 1, "Finetune"; paper 000, Table 6, B.4).

The backbone and a new Linear(D, C) are trained together on the labelled training split with Adam: backbone lr 1e-4,
classifier lr 1e-2, both divided by 10 at 50% and 75% of the epochs, batch 32, with the affine (rotation 18 deg,
scale 0.9-1.1, translation 0.1, shear 10) and cutout augmentation, each with probability 0.5. The test split is
scored once at the end. **Pitfall** of the public script (shared/reference/implementation-notes.md): its schedule
never decays and it applies no augmentation; this follows the paper. The run's backbone is not modified: a copy
is finetuned.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import check_at_least
from ..data.recipes import AffineCutoutAugment
from ..data.base import num_classes as count_classes
from ..data.stream import pixels
from ..interfaces import Backbone, EvalResult, Evaluator
from .features import extract_features
from .linear import accuracy
from .results import write_results


class FinetuneEval(Evaluator):
    """Top-1 accuracy (%) after finetuning backbone and linear classifier together (paper 000, A.6)."""

    def __init__(self, epochs: int = 100, batch_size: int = 32, backbone_lr: float = 1e-4, head_lr: float = 1e-2,
                 augment: bool = True, cutout: Optional[int] = None, split: str = "auto", seed: int = 0):
        check_at_least(1, epochs=epochs, batch_size=batch_size, cutout=cutout)
        self.epochs, self.batch_size, self.backbone_lr, self.head_lr = epochs, batch_size, backbone_lr, head_lr
        self.augment, self.cutout, self.split, self.seed = augment, cutout, split, seed

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "finetune") -> EvalResult:
        train, test, split = data.eval_pair(self.split)
        spec = data.spec()
        num_classes = count_classes(train, test)
        torch.manual_seed(self.seed)
        model = copy.deepcopy(backbone).to(device).train()
        clf = nn.Linear(int(model.num_features), num_classes).to(device)
        opt = torch.optim.Adam([{"params": model.parameters(), "lr": self.backbone_lr},
                                {"params": clf.parameters(), "lr": self.head_lr}])
        miles = [max(1, int(self.epochs * 0.5)), max(1, int(self.epochs * 0.75))]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=miles, gamma=0.1)
        side = spec.image_size
        aug = AffineCutoutAugment(cutout=self.cutout or max(1, side // 3),
                                  affine_p=0.5 if self.augment else 0.0,
                                  cutout_p=0.5 if self.augment else 0.0).configure(spec)
        gen = torch.Generator(device=device).manual_seed(self.seed)
        order = torch.Generator().manual_seed(self.seed)
        images, labels = pixels(train.images).to(device), train.labels.to(device)
        n = len(train)
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=order).to(device)
            for s in range(0, n, self.batch_size):
                idx = perm[s : s + self.batch_size]
                if idx.numel() < 2:  # BatchNorm cannot train on a single image
                    continue
                x = aug(images[idx], 1, gen)
                loss = F.cross_entropy(clf(model(x)), labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
        te_x = extract_features(model, test.images, data.mean, data.std, device)
        metrics = {"accuracy": accuracy(clf, te_x, test.labels), "num_train": float(n), "num_test": float(len(test))}
        if run_dir is not None:
            write_results(Path(run_dir), name, dict(metrics, split=split, epochs=self.epochs))
        return EvalResult(metrics)
