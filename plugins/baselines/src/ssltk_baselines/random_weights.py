"""The random-weights lower bound of the relational-reasoning benchmark (paper 000, section 5 and Table 2).

No training step runs: ``ssltk fit --objective random`` saves the backbone exactly as initialised from the run's
seed, as a ``backbone.safetensors`` like any other run, so every evaluator runs on it unchanged.
"""
from __future__ import annotations

import torch
from torch import nn

from ssltk import Objective, ObjectiveOutput, ViewBatch


class RandomWeights(Objective):
    """The untrained, seeded backbone (lower bound); fit writes it without taking a step."""

    trains = False
    trainer_defaults = {"epochs": 0}

    def __init__(self, in_dim: int):
        super().__init__(in_dim)

    @property
    def num_views(self) -> int:
        return 1

    def forward(self, batch: ViewBatch, backbone: nn.Module) -> ObjectiveOutput:
        # a constant: the backbone is not even run, so nothing can move its weights or BatchNorm statistics
        return ObjectiveOutput(torch.zeros((), device=batch.views.device))
