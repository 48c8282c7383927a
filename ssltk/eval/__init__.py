"""Evaluators: the linear protocol of paper 002 on cached features (more protocols come as plugins)."""
from .features import extract_features
from .linear import LinearEval

__all__ = ["extract_features", "LinearEval"]
