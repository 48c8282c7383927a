"""Monitors the training loop calls at step and epoch end: the online linear probe (paper 003, Fig. 3) and the kNN
monitor (lightly's online monitor, with paper 004's weighted kNN). Both read the backbone without random draws from
the training streams, so a monitored run trains exactly as an unmonitored one; only rank 0 reports."""
from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn


class ProbeMonitor:
    """Every ``every`` steps, one epoch of a linear probe on labelled training images; its training accuracy is logged."""

    def __init__(self, images: Any, labels: torch.Tensor, spec: Any, device: torch.device, size: Optional[int],
                 seed: int, every: int):
        from ..eval.probe import OnlineProbe

        self.every = every
        self.probe = OnlineProbe(images, labels, spec.mean, spec.std, device, size, seed=seed)

    def after_step(self, backbone: nn.Module, epoch: int, step: int, log: Any) -> None:
        if step % self.every == 0:
            log.write(event="probe", epoch=epoch + 1, step=step, probe_train_acc=self.probe(backbone, step))


class KNNMonitor:
    """Every ``every`` epochs, weighted kNN accuracy of the frozen backbone on the held-out (or test) split."""

    def __init__(self, data: Any, device: torch.device, every: int, epochs: int, k: int = 50, sigma: float = 0.1):
        self.data, self.device, self.every, self.epochs = data, device, every, epochs
        self.k, self.sigma = k, sigma

    def after_epoch(self, backbone: nn.Module, epoch: int, step: int, log: Any, progress: Any = None) -> None:
        if (epoch + 1) % self.every:
            return
        from ..eval.knn import KNNEval

        metrics = KNNEval(k=self.k, sigma=self.sigma).evaluate(backbone, self.data, device=self.device).metrics
        log.write(event="knn", epoch=epoch + 1, step=step, knn_accuracy=metrics["accuracy"],
                  **({"knn_accuracy_top5": metrics["accuracy_top5"]} if "accuracy_top5" in metrics else {}))
        if progress is not None:
            progress.note(f"epoch {epoch + 1}/{self.epochs}  kNN accuracy {metrics['accuracy']:.2f}")
