"""Self-supervised relational reasoning (Patacchiola & Storkey 2020) as an ssltk plugin."""
from .loss import focal_bce_with_logits
from .objective import RelationalObjective
from .pairs import aggregate, relation_pairs

__all__ = ["RelationalObjective", "aggregate", "focal_bce_with_logits", "relation_pairs"]
