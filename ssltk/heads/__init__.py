"""Head builders shared by objectives."""
from .mlp import MLPHead, RelationHead

__all__ = ["MLPHead", "RelationHead"]
