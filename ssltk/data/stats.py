"""Per-channel normalisation statistics used by the papers (shared/reference/implementation-notes.md)."""
from __future__ import annotations

from typing import Dict, Tuple

from torch import Tensor

from ..errors import SsltkError

Stats = Tuple[Tuple[float, ...], Tuple[float, ...]]

NAMED_STATS: Dict[str, Stats] = {
    "cifar10": ((0.491, 0.482, 0.447), (0.247, 0.243, 0.262)),
    "cifar100": ((0.507, 0.487, 0.441), (0.267, 0.256, 0.276)),
    "stl10": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "tiny-imagenet": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    "slimagenet": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def compute_stats(images: Tensor, max_images: int = 10000, max_streamed: int = 2000) -> Stats:
    """Mean and standard deviation per channel of uint8 images, scaled to [0, 1]: over the first ``max_images``, or
    for streamed images over a seeded sample of ``max_streamed`` (decoding a whole set larger than memory to
    normalise it would cost an epoch)."""
    if not isinstance(images, Tensor):
        import torch

        n = len(images)
        pick = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_streamed].sort().values
        images = torch.cat(list(images[pick].batches()))
    x = images[:max_images].double().div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def resolve_stats(name: str, images: Tensor) -> Stats:
    """``computed`` measures the data; any other value names a preset from :data:`NAMED_STATS`."""
    if name == "computed":
        return compute_stats(images)
    if name not in NAMED_STATS:
        raise SsltkError(f"unknown normalisation stats {name!r}; use computed or one of {', '.join(NAMED_STATS)}")
    mean, std = NAMED_STATS[name]
    c = images.shape[1]
    return mean[:c] if c < 3 else mean, std[:c] if c < 3 else std
