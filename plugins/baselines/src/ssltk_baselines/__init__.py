"""The baselines of the relational-reasoning benchmark (paper 000, appendix A.5) as one ssltk plugin."""
from .deepcluster import DeepClusterObjective
from .deepinfomax import DeepInfoMaxObjective, jsd_mi
from .random_weights import RandomWeights
from .rotation import RotationObjective
from .simclr import SimCLRObjective, nt_xent
from .supervised import SupervisedObjective

__all__ = ["DeepClusterObjective", "DeepInfoMaxObjective", "RandomWeights", "RotationObjective", "SimCLRObjective",
           "SupervisedObjective", "jsd_mi", "nt_xent"]
