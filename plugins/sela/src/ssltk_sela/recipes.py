"""SeLa's augmentation recipe, used by this plugin alone (it left the engine's recipes, which name no method)."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

from ssltk import ContrastiveAugment


class SelaAugment(ContrastiveAugment):
    """SeLa's CIFAR/SVHN recipe (paper 004, appendix A.1, after Huang et al. 2019): RandomResizedCrop(scale
    0.2-1) -> ColorJitter(0.4, 0.4, 0.4, 0.4) always -> Grayscale p 0.2 -> HFlip 0.5 -> normalise."""

    def __init__(self, size: Optional[int] = None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, scale: Tuple[float, float] = (0.2, 1.0),
                 jitter: Tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.4), jitter_p: float = 1.0,
                 gray_p: float = 0.2, flip_p: float = 0.5):
        super().__init__(size, mean, std, scale=scale, flip_p=flip_p, jitter=jitter, jitter_p=jitter_p,
                         gray_p=gray_p)
