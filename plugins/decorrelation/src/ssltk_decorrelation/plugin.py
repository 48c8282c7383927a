"""Entry point of the ``decorrelation`` plugin (group ``ssltk``): Barlow Twins and VICReg."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .barlow_twins import BarlowTwinsObjective
    from .vicreg import VICRegObjective

    register("barlowtwins", BarlowTwinsObjective)
    register("vicreg", VICRegObjective)
