"""SeLa (Asano, Rupprecht & Vedaldi, ICLR 2020) as an ssltk plugin: self-labelling with Sinkhorn-Knopp."""
from .labels import LabelTransfer, export_labels
from .objective import SelaObjective, balanced_random_labels, label_epochs
from .sinkhorn import SinkhornResult, sinkhorn_labels, sinkhorn_log

__all__ = ["LabelTransfer", "SelaObjective", "SinkhornResult", "balanced_random_labels", "export_labels",
           "label_epochs", "sinkhorn_labels", "sinkhorn_log"]
