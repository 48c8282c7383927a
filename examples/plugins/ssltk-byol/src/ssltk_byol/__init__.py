"""BYOL as an ssltk plugin."""
from .objective import BYOL

__all__ = ["BYOL"]
