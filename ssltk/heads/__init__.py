"""Head builders shared by objectives."""
from .mlp import MLPHead, RelationHead, projection_mlp

__all__ = ["MLPHead", "RelationHead", "projection_mlp"]
