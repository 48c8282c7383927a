"""Hook implementations: ssltk calls these with a ``register`` callback when it loads plugins."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .objective import BYOL

    register("byol-example", BYOL)
