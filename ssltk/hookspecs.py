"""pluggy hook specifications of the ``ssltk`` project.

Following llm's plugin design, every hook receives a ``register`` callback instead of returning values, so a plugin
never touches global state and the host knows which plugin registered what.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("ssltk")
hookimpl = pluggy.HookimplMarker("ssltk")


@hookspec
def ssltk_register_objectives(register):
    """Register objectives: ``register("name", ObjectiveSubclass)``."""


@hookspec
def ssltk_register_backbones(register):
    """Register backbones: ``register("name", BackboneSubclass)``; ``register.prefix("p", cls, "arg")`` for families."""


@hookspec
def ssltk_register_heads(register):
    """Register heads: ``register("name", HeadSubclass)``."""


@hookspec
def ssltk_register_evaluators(register):
    """Register evaluators: ``register("name", EvaluatorSubclass)``."""


@hookspec
def ssltk_register_datasets(register):
    """Register datasets: ``register("name", DataSourceSubclass)``."""


@hookspec
def ssltk_register_augmentations(register):
    """Register augmentation recipes: ``register("name", AugmentationSubclass)``."""


@hookspec
def ssltk_register_loggers(register):
    """Register experiment loggers: ``register("name", LoggerSubclass)`` (see ``ssltk.loggers.Logger``)."""


@hookspec
def ssltk_add_subcommands(register):
    """Add CLI subcommands: ``register("name", main)`` where ``main(argv: list[str]) -> int``, with a docstring."""
