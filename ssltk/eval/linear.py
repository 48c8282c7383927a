"""Linear evaluation, the protocol of paper 002 (section 4, "Linear evaluation"; paper 000, appendix B.1).

The backbone is frozen in eval mode, features are detached, a new Linear(D, C) is trained with Adam (lr 1e-3) for
100 epochs at batch 128 with no augmentation, and the test split is scored once at the end (no model selection on
it). Because the backbone is frozen and there is no augmentation, the features are extracted once and cached; the
classifier then trains on the cached tensors, which gives the same result as running the backbone every epoch
(``cached: false`` runs it every epoch, for the comparison in examples/benchmarks/linear_cache.py).

Domain transfer (train the backbone on one dataset, evaluate on another: CIFAR-10 to CIFAR-100) and grain
(CIFAR-100-20 coarse labels) are this protocol on another dataset: ``ssltk eval linear --run RUN --data cifar100``
or ``--data cifar100-20``; results then go under ``linear@<dataset>``.

``layers`` adds the SeLa-style probes of intermediate layers (paper 004, Table 2): each named layer's feature map
is pooled (``pool``: avg, or max as SeLa's appendix A.1) to about ``probe_dim`` features and gets its own linear
classifier. SeLa's probe optimiser is ``optimizer: sgd, lr: 0.01, milestones: [5, 15, 25], lr_gamma: 0.2,
epochs: 36, augment: crop-flip`` (appendix A.1). With ``augment: crop-flip`` each training mini-batch is cropped
(padding 4) and flipped afresh (:class:`ssltk.data.recipes.CropFlipAugment`, the standard CIFAR random crop: the
authors' "random crop + flip", whose ImageNet form is a 224 crop after resizing to 256) and its features are computed
then, for the final layer and for every probed layer alike; the test split is scored un-augmented. The relational
benchmark's protocol (paper 002) has no augmentation, so ``none`` stays the default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import SsltkError, check_at_least
from ..data.augment import EvalTransform
from ..data.base import num_classes as count_classes
from ..data.stream import pixels
from ..engine.heartbeat import heartbeat, say
from ..interfaces import Backbone, EvalResult, Evaluator
from .features import eval_mode, extract_features, extract_layer_features, layer_features, resolve_layer
from .results import write_results

__all__ = ["LinearEval", "accuracy", "train_linear", "write_results"]


def seeded_linear(in_dim: int, num_classes: int, seed: int, device: torch.device) -> nn.Linear:
    """Linear(D, C) initialised from ``seed`` alone, leaving the global random state as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(in_dim, num_classes).to(device)


def train_linear(train_x: Optional[Tensor], train_y: Tensor, num_classes: int, epochs: int = 100,
                 batch_size: int = 128, lr: float = 1e-3, seed: int = 0, device: Optional[torch.device] = None,
                 features: Optional[Callable[[Tensor], Tensor]] = None, in_dim: Optional[int] = None,
                 clf: Optional[nn.Linear] = None, opt: Optional[torch.optim.Optimizer] = None,
                 optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 0.0,
                 milestones: Sequence[int] = (), lr_gamma: float = 0.1) -> nn.Linear:
    """Fit Linear(D, C) with Adam (or SGD with momentum) and cross-entropy, mini-batches reshuffled every epoch;
    the learning rate is multiplied by ``lr_gamma`` at each epoch of ``milestones``.

    The inputs of a mini-batch are ``train_x[idx]`` (cached features), or ``features(idx)`` when given (the backbone
    run on those images again, every epoch); with the same seed both see the same batches in the same order.
    ``clf`` and ``opt`` continue training an existing classifier (the online probe) instead of a new one.
    """
    device = device or (train_x.device if train_x is not None else torch.device("cpu"))
    dim = in_dim if in_dim is not None else train_x.shape[1]
    g = torch.Generator().manual_seed(seed)
    if clf is None:
        clf = seeded_linear(dim, num_classes, seed, device)
    if opt is None:
        opt = (torch.optim.SGD(clf.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
               if optimizer == "sgd" else torch.optim.Adam(clf.parameters(), lr=lr, weight_decay=weight_decay))
    x = train_x.to(device) if train_x is not None else None
    y = train_y.to(device)
    n = y.shape[0]
    for epoch in range(epochs):
        say(f"classifier epoch {epoch + 1}/{epochs}")
        if milestones:
            for group in opt.param_groups:
                group["lr"] = lr * lr_gamma ** sum(epoch >= m for m in milestones)
        perm = torch.randperm(n, generator=g)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            inputs = features(idx) if features is not None else x[idx.to(device)]
            loss = F.cross_entropy(clf(inputs), y[idx.to(device)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return clf


@torch.no_grad()
def accuracy(clf: nn.Module, x: Tensor, y: Tensor, k: int = 1) -> float:
    """Top-``k`` accuracy (%) of a classifier."""
    return topk_accuracy(clf(x.to(next(clf.parameters()).device)).cpu(), y, k)


def topk_accuracy(scores: Tensor, y: Tensor, k: int = 1) -> float:
    """Percentage of rows whose true class is among the ``k`` highest scores."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return float((top == y.cpu()[:, None]).any(1).float().mean().item() * 100.0)


class LinearEval(Evaluator):
    """Top-1 accuracy (%) of a linear classifier on frozen features (paper 002 protocol; conv probes of paper 004).

    ``split`` picks the test split: ``auto`` uses the held-out validation split when the dataset has one, else the
    official test set. ``layers``: also probe these intermediate layers (names from the backbone's probe layers,
    e.g. conv1..conv5 of AlexNet, or ``all``). ``augment``: ``none`` (paper 002) or ``crop-flip`` (paper 004's
    probes, appendix A.1): training images cropped and flipped afresh for every mini-batch, from a generator seeded
    by ``seed``.
    """

    def __init__(self, epochs: int = 100, batch_size: int = 128, lr: float = 1e-3, split: str = "auto",
                 seed: int = 0, feature_batch_size: int = 512, cached: bool = True,
                 layers: Optional[Union[List[str], str]] = None, probe_dim: int = 9600, pool: str = "avg",
                 optimizer: str = "adam", momentum: float = 0.9, weight_decay: float = 0.0,
                 milestones: Optional[List[int]] = None, lr_gamma: float = 0.1, augment: str = "none"):
        check_at_least(1, epochs=epochs, batch_size=batch_size, feature_batch_size=feature_batch_size,
                       probe_dim=probe_dim)
        if pool not in ("avg", "max"):
            raise SsltkError(f"--pool must be avg or max, got {pool!r}")
        if optimizer not in ("adam", "sgd"):
            raise SsltkError(f"--optimizer must be adam or sgd, got {optimizer!r}")
        if augment not in ("none", "crop-flip"):
            raise SsltkError(f"--augment must be none or crop-flip, got {augment!r}")
        self.augment = augment
        self.pool, self.optimizer, self.momentum, self.weight_decay = pool, optimizer, momentum, weight_decay
        self.milestones, self.lr_gamma = list(milestones or []), lr_gamma
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.split, self.seed, self.feature_batch_size = split, seed, feature_batch_size
        if isinstance(layers, str):  # "all" or "conv1,conv5" from the command line
            layers = [part.strip() for part in layers.split(",") if part.strip()]
        self.cached, self.layers, self.probe_dim = cached, list(layers or []), probe_dim

    def _fit_and_score(self, tr_x, train, te_x, test, num_classes, device, features=None):
        clf = train_linear(tr_x, train.labels, num_classes, self.epochs, self.batch_size, self.lr, self.seed, device,
                           features=features, in_dim=te_x.shape[1], optimizer=self.optimizer, momentum=self.momentum,
                           weight_decay=self.weight_decay, milestones=self.milestones, lr_gamma=self.lr_gamma)
        return accuracy(clf, te_x, test.labels), clf

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "linear") -> EvalResult:
        with heartbeat(f"linear evaluation ({name})"):
            return self._evaluate(backbone, data, device=device, run_dir=run_dir, name=name)

    def _evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path],
                  name: str) -> EvalResult:
        train, test, split = data.eval_pair(self.split)
        feats = lambda s: extract_features(backbone, s.images, data.mean, data.std, device, self.feature_batch_size)
        num_classes = count_classes(train, test)
        te_x = feats(test)
        if self.cached and self.augment == "none":
            tr_x, run_backbone = feats(train), None
        else:
            tr_x, run_backbone = None, self._per_batch(backbone, train.images, data, device)
        acc, clf = self._fit_and_score(tr_x, train, te_x, test, num_classes, device, run_backbone)
        train_acc = accuracy(clf, tr_x if tr_x is not None else feats(train), train.labels)
        metrics = {"accuracy": acc}
        if num_classes > 5:
            metrics["accuracy_top5"] = accuracy(clf, te_x, test.labels, k=5)
        metrics.update(train_accuracy=train_acc, num_train=float(len(train)), num_test=float(len(test)))
        layers = list(getattr(backbone, "probe_layers", dict)()) if self.layers == ["all"] else self.layers
        for layer_name in layers:
            layer = resolve_layer(backbone, layer_name)
            lf = lambda s: extract_layer_features(backbone, layer, s.images, data.mean, data.std, device,
                                                  self.probe_dim, pool=self.pool)
            l_te = lf(test)
            if self.augment == "none":
                l_tr, per_batch = lf(train), None
            else:
                l_tr, per_batch = None, self._per_batch(backbone, train.images, data, device, layer)
            metrics[f"accuracy_{layer_name}"], _ = self._fit_and_score(l_tr, train, l_te, test, num_classes, device,
                                                                        per_batch)
            metrics[f"dim_{layer_name}"] = float(l_te.shape[1])
        if run_dir is not None:
            write_results(Path(run_dir), name, dict(metrics, split=split, epochs=self.epochs, cached=self.cached,
                                                    augment=self.augment))
        return EvalResult(metrics)

    def _per_batch(self, backbone: nn.Module, images, data, device: torch.device,
                   layer: Optional[nn.Module] = None) -> Callable[[Tensor], Tensor]:
        """Features of each training mini-batch computed when it is drawn: of the final layer, or of ``layer``
        pooled as the probes are; cropped and flipped first under ``augment: crop-flip``."""
        side = images.shape[-1]
        if self.augment == "crop-flip":
            from ..data.recipes import CropFlipAugment

            transform = CropFlipAugment(side, data.mean, data.std)
            g = torch.Generator(device=device).manual_seed(self.seed + 1)
            prepare = lambda x: transform(x, 1, g)  # noqa: E731
        else:
            prepare = EvalTransform(data.mean, data.std)

        @torch.no_grad()
        def features(idx: Tensor) -> Tensor:
            with eval_mode(backbone):
                x = prepare(pixels(images, idx.cpu()).to(device))
                out = backbone(x) if layer is None else layer_features(backbone, layer, x, self.probe_dim, self.pool)
            return out.float()

        return features
