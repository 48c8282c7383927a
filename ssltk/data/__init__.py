"""Datasets held as uint8 tensors, splits, batching, and batched on-device augmentation."""
from .base import DataSource, ImageSet
from .augment import EvalTransform
from .recipes import Augmentation, ContrastiveAugment

__all__ = ["Augmentation", "DataSource", "ImageSet", "ContrastiveAugment", "EvalTransform"]
