"""The registries of the engine, one per kind: a leaf of the house that imports base classes only. The plugin loader
(:mod:`ssltk.plugins`) sits above them and fills them: it sets itself as every registry's loader, so that a lookup
loads the installed plugins first."""
from __future__ import annotations

from .registry import Registry
from .data.base import DataSource
from .data.recipes import Augmentation
from .interfaces import Backbone, Evaluator, Head, Logger, Objective

OBJECTIVES: Registry = Registry("objective", Objective)
BACKBONES: Registry = Registry("backbone", Backbone)
HEADS: Registry = Registry("head", Head)
EVALUATORS: Registry = Registry("evaluator", Evaluator)
DATASETS: Registry = Registry("dataset", DataSource)
AUGMENTATIONS: Registry = Registry("augmentation", Augmentation)
LOGGERS: Registry = Registry("logger", Logger)
SUBCOMMANDS: Registry = Registry("subcommand")

ALL_REGISTRIES = {
    "objective": OBJECTIVES,
    "backbone": BACKBONES,
    "head": HEADS,
    "evaluator": EVALUATORS,
    "dataset": DATASETS,
    "augmentation": AUGMENTATIONS,
    "logger": LOGGERS,
}

