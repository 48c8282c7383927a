"""The pieces of one training step and of a fit's result: backbone and objective as one module (what a DDP wrapper
holds), the seed of every epoch (each epoch reseeds every random source from it, so a resumed run continues as the
uninterrupted one), and what ``fit`` returns."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from torch import nn

from ..interfaces import ObjectiveOutput, ViewBatch


@dataclass
class FitResult:
    run_dir: Path
    backbone: nn.Module
    objective: nn.Module
    metrics: Dict[str, Any] = field(default_factory=dict)
    rank: int = 0  # the process's rank under torchrun: only rank 0 reports
    #: the epoch a fit stopped after at ``--trainer.max_time`` (its checkpoint saved; resume continues it), or None
    stopped_at_epoch: Optional[int] = None


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + 12_345) % (2**63 - 1)


class TrainStep(nn.Module):
    """Backbone plus objective as one module: the unit a DDP wrapper would hold."""

    def __init__(self, backbone: nn.Module, objective: nn.Module):
        super().__init__()
        self.backbone, self.objective = backbone, objective

    def forward(self, batch: ViewBatch) -> ObjectiveOutput:
        return self.objective(batch, self.backbone)
