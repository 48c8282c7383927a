"""Structured mutual information (Sansone 2022) as an ssltk plugin."""
from .critics import RelationCritic, ZCritic, nwj_bound
from .gumbel import gumbel_softmax
from .mpnn import MPNN
from .objective import StructuredMI

__all__ = ["MPNN", "RelationCritic", "StructuredMI", "ZCritic", "gumbel_softmax", "nwj_bound"]
