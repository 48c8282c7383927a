"""Entry point of the ``structured-mi`` plugin: the objective and the ``ssltk interpret`` subcommand."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .objective import StructuredMI

    register("structured-mi", StructuredMI)


@hookimpl
def ssltk_add_subcommands(register):
    from .interpret import main

    register("interpret", main)
