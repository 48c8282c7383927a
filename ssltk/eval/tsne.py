"""t-SNE of test features coloured by class (paper 000, appendix A.8 and B.11, Figures 6-7).

The paper's settings, with scikit-learn's implementation: 1000 iterations, Euclidean metric, random initialisation,
perplexity 30, learning rate 200. ``groups`` colours by super-category instead: ``cifar10`` gives Figure 7's
vehicles (plane, car, ship, truck) against animals, or pass one group id per class.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import torch

from ..errors import SsltkError
from ..interfaces import Backbone, EvalResult, Evaluator
from .features import extract_features
from .plots import scatter_by_class
from .results import write_results

GROUP_PRESETS = {"cifar10": ([0, 0, 1, 1, 1, 1, 1, 1, 0, 0], ["vehicles", "animals"])}


def tsne_embed(features: np.ndarray, seed: int = 0, perplexity: float = 30.0, learning_rate: float = 200.0,
               iterations: int = 1000) -> np.ndarray:
    """2-d t-SNE embedding with the paper's settings (A.8)."""
    from sklearn.manifold import TSNE

    # scikit-learn renamed n_iter to max_iter in 1.5
    iters = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    tsne = TSNE(n_components=2, perplexity=min(perplexity, max(1.0, features.shape[0] - 1.0)),
                learning_rate=learning_rate, init="random", metric="euclidean", random_state=seed,
                **{iters: iterations})
    return tsne.fit_transform(features.astype(np.float32))


class TSNEEval(Evaluator):
    """A PNG of the t-SNE embedding of test features coloured by class or super-category (paper 000, A.8)."""

    def __init__(self, max_points: Optional[int] = 10000, groups: Optional[Union[str, List[int]]] = None,
                 group_names: Optional[List[str]] = None, perplexity: float = 30.0, learning_rate: float = 200.0,
                 iterations: int = 1000, split: str = "auto", seed: int = 0, feature_batch_size: int = 512):
        self.max_points, self.groups, self.group_names = max_points, groups, group_names
        self.perplexity, self.learning_rate, self.iterations = perplexity, learning_rate, iterations
        self.split, self.seed, self.feature_batch_size = split, seed, feature_batch_size

    def _grouping(self, num_classes: int):
        if self.groups is None:
            return None, None
        if isinstance(self.groups, str):
            if self.groups not in GROUP_PRESETS:
                raise SsltkError(f"unknown groups preset {self.groups!r}; use {', '.join(GROUP_PRESETS)} or a list "
                                 "with one group id per class")
            mapping, names = GROUP_PRESETS[self.groups]
        else:
            mapping, names = list(self.groups), self.group_names
        if len(mapping) < num_classes:
            raise SsltkError(f"groups maps {len(mapping)} classes but the data has {num_classes}")
        return np.asarray(mapping), names

    def evaluate(self, backbone: Backbone, data, *, device: torch.device, run_dir: Optional[Path] = None,
                 name: str = "tsne") -> EvalResult:
        _, test, split = data.eval_pair(self.split)
        n = len(test) if self.max_points is None else min(self.max_points, len(test))
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(self.seed))[:n].sort().values
        feats = extract_features(backbone, test.images[pick], data.mean, data.std, device, self.feature_batch_size)
        labels = test.labels[pick].numpy()
        mapping, group_names = self._grouping(int(labels.max()) + 1)
        points = tsne_embed(feats.numpy(), self.seed, self.perplexity, self.learning_rate, self.iterations)
        colour, names = (mapping[labels], group_names) if mapping is not None else (labels, test.classes)
        metrics = {"num_points": float(n)}
        artifacts = {}
        if run_dir is not None:
            fname = "tsne_groups.png" if mapping is not None else "tsne.png"
            artifacts["png"] = scatter_by_class(points, colour, names, Path(run_dir) / name / fname,
                                                f"t-SNE of {n} {split} features")
            np.save(Path(run_dir) / name / "embedding.npy", np.concatenate([points, labels[:, None]], 1))
            write_results(Path(run_dir), name, dict(metrics, split=split, png=str(artifacts["png"])))
        return EvalResult(metrics, artifacts)
