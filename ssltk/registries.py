"""The registries of the engine, one per kind. Lookups load the installed plugins first."""
from __future__ import annotations

from .registry import Registry
from .data.base import DataSource
from .data.recipes import Augmentation
from .interfaces import Backbone, Evaluator, Head, Objective
from .loggers import Logger

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


def _load() -> None:
    from .plugins import load_plugins

    load_plugins()


for _reg in list(ALL_REGISTRIES.values()) + [SUBCOMMANDS]:
    _reg._before_lookup = _load
