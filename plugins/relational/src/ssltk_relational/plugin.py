"""Entry point of the ``relational`` plugin (group ``ssltk``)."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .objective import RelationalObjective

    register("relational", RelationalObjective)
