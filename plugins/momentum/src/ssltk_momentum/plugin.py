"""Entry point of the ``momentum`` plugin (group ``ssltk``): the methods with a momentum teacher."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .byol import BYOLObjective
    from .dino import DINOObjective
    from .mocov3 import MoCoV3Objective

    register("byol", BYOLObjective)
    register("mocov3", MoCoV3Objective)
    register("dino", DINOObjective)
