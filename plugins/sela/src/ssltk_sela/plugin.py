"""Entry point of the ``sela`` plugin (group ``ssltk``)."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .labels import LabelTransfer
    from .objective import SelaObjective
    from .swav import SwAVObjective

    register("sela", SelaObjective)
    register("swav", SwAVObjective)
    register("sela-transfer", LabelTransfer)


@hookimpl
def ssltk_register_augmentations(register):
    from .recipes import SelaAugment

    register("sela", SelaAugment)


@hookimpl
def ssltk_add_subcommands(register):
    from .labels import main

    register("sela-labels", main)
