"""Entry point of the ``baselines`` plugin (group ``ssltk``): one distribution registering every baseline."""
from ssltk import hookimpl


@hookimpl
def ssltk_register_objectives(register):
    from .deepcluster import DeepClusterObjective
    from .deepinfomax import DeepInfoMaxObjective
    from .random_weights import RandomWeights
    from .rotation import RotationObjective
    from .simclr import SimCLRObjective
    from .supervised import SupervisedObjective

    register("supervised", SupervisedObjective)
    register("random", RandomWeights)
    register("simclr", SimCLRObjective)
    register("rotationnet", RotationObjective)
    register("deepcluster", DeepClusterObjective)
    register("deepinfomax", DeepInfoMaxObjective)


@hookimpl
def ssltk_register_augmentations(register):
    from .rotation import RotationAugment

    register("rotation", RotationAugment)
