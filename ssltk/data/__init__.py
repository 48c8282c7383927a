"""Datasets held as uint8 tensors, splits, batching, and batched on-device augmentation."""
from .base import DataSource, ImageSet
from .augment import ContrastiveAugment, EvalTransform

__all__ = ["DataSource", "ImageSet", "ContrastiveAugment", "EvalTransform"]
