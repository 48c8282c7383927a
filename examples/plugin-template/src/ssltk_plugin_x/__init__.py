"""A template ssltk plugin."""
from .objective import SimSiam

__all__ = ["SimSiam"]
