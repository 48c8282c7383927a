"""ssltk: a plugin-based self-supervised learning toolkit.

Public API: the interfaces, the registries and their ``register_*`` decorators, ``hookimpl`` for plugins, and the
``fit`` / ``evaluate`` entry points that the CLI also uses. Plugins build on these names, on the recipes
(:class:`ContrastiveAugment`, :class:`CropFlipAugment`, ...), on the helpers for run directories, weights files and
features below, and on the public modules :mod:`ssltk.numerics` (k-means, principal axes) and :mod:`ssltk.testing`;
everything else under ``ssltk.engine``, ``ssltk.data`` and ``ssltk.eval`` may change without notice.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import SsltkError, UnknownNameError
from .hookspecs import hookimpl
from .interfaces import (Backbone, DataSpec, EvalResult, Evaluator, FitContext, Head, Logger, Objective, ObjectiveOutput,
                         ViewBatch, ViewGroup)
from .registries import AUGMENTATIONS, BACKBONES, DATASETS, EVALUATORS, HEADS, LOGGERS, OBJECTIVES
from . import plugins as _plugins  # noqa: F401  (the plugin loader: it sets itself as every registry's loader)
from .registry import Registry
from .data.base import DataSource, ImageSet
from .engine.config import EvalConfig, TrainerConfig
from .engine.trainer import FitResult
from .api import evaluate, fit, load_backbone, make_config
from .engine.build import trust_class_path
from .momentum import MomentumEncoder, cosine_momentum
from .engine.optim import no_decay_groups
from .data.recipes import (AffineCutoutAugment, Augmentation, ContrastiveAugment, CropFlipAugment, crop_groups,
                           objective_recipe)
from .heads import projection_mlp
from .data.augment import EvalTransform, normalize, to_float
from .data.stream import pixels
from .eval.features import eval_mode, extract_features, resolve_layer
from .engine.build import build
from .engine.checkpoint import read_safetensors, save_safetensors
from .engine.rundir import checkpoint_files, read_run_config, writing_into
from .engine.process import resolve_device
from . import numerics
from .parsers import command_parser, parse as parse_command


def register_objective(name: str, **defaults):
    """Decorator: ``@ssltk.register_objective("mine")`` on an :class:`Objective` subclass."""
    return OBJECTIVES.register(name, **defaults)


def register_backbone(name: str, **defaults):
    return BACKBONES.register(name, **defaults)


def register_head(name: str, **defaults):
    return HEADS.register(name, **defaults)


def register_evaluator(name: str, **defaults):
    return EVALUATORS.register(name, **defaults)


def register_dataset(name: str, **defaults):
    return DATASETS.register(name, **defaults)


def create_backbone(name: str, **kwargs) -> Backbone:
    return BACKBONES.create(name, **kwargs)


def create_objective(name: str, **kwargs) -> Objective:
    return OBJECTIVES.create(name, **kwargs)


def list_objectives(pattern: str = "*"):
    return OBJECTIVES.list(pattern)


def list_backbones(pattern: str = "*"):
    return BACKBONES.list(pattern)


__all__ = [
    "AUGMENTATIONS", "LOGGERS", "Logger", "MomentumEncoder", "cosine_momentum", "no_decay_groups", "Backbone", "BACKBONES", "DATASETS", "DataSource", "DataSpec", "EVALUATORS", "EvalConfig", "EvalResult",
    "Evaluator", "FitContext", "FitResult", "HEADS", "Head", "ImageSet", "OBJECTIVES", "Objective", "ObjectiveOutput",
    "Registry", "SsltkError", "TrainerConfig", "UnknownNameError", "ViewBatch", "ViewGroup", "create_backbone", "create_objective",
    "evaluate", "fit", "hookimpl", "list_backbones", "list_objectives", "load_backbone", "make_config",
    "register_backbone", "register_dataset", "register_evaluator", "register_head", "register_objective",
    "trust_class_path", "AffineCutoutAugment", "Augmentation", "ContrastiveAugment", "CropFlipAugment",
    "objective_recipe", "crop_groups", "projection_mlp", "EvalTransform", "normalize", "to_float", "pixels", "eval_mode", "extract_features", "resolve_layer", "build",
    "read_safetensors", "save_safetensors", "checkpoint_files", "read_run_config", "writing_into", "resolve_device",
    "numerics", "command_parser", "parse_command",
]
