"""Whole-dataset feature extraction: the backbone in eval mode over un-augmented, normalised images, or over one
augmented view of each image (:func:`augmented_features`, SeLa's label step)."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..engine.heartbeat import say
from ..engine.precision import amp_enabled, autocast
from ..data.augment import EvalTransform


@contextmanager
def eval_mode(backbone: nn.Module):
    """The module in evaluation mode for the block, restored to its previous mode afterwards."""
    was_training = backbone.training
    backbone.eval()
    try:
        yield
    finally:
        backbone.train(was_training)


def _normalised_batches(images: Tensor, mean: Sequence[float], std: Sequence[float], device: torch.device,
                        batch_size: int, transform: Optional[Callable[[Tensor], Tensor]] = None) -> Iterator[Tensor]:
    transform = transform or EvalTransform(mean, std)
    if not isinstance(images, Tensor):  # streamed: decoded in order by the workers, a batch in memory at a time
        for batch in images.batches(batch_size):
            yield transform(batch.to(device, non_blocking=True))
        return
    for start in range(0, images.shape[0], batch_size):
        yield transform(images[start : start + batch_size].to(device, non_blocking=True))


@torch.no_grad()
def extract_features(backbone: nn.Module, images: Tensor, mean: Sequence[float], std: Sequence[float],
                     device: torch.device, batch_size: int = 512, amp: bool = False,
                     transform: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
    """(N, D) float32 features of uint8 images (N, C, H, W), in order, on the CPU.

    ``transform`` replaces the plain normalisation of each uint8 batch on the device (an objective's augmentation,
    for a label step over augmented views).

    The backbone is switched to eval mode (BatchNorm uses running statistics) and restored afterwards. Inside
    :func:`ssltk.distributed.sharded_passes` under torchrun, each rank extracts its contiguous share of the images
    and every rank receives all features.
    """
    from ..distributed import all_gather_uneven, passes_are_sharded, shard_bounds, sharded_passes

    if passes_are_sharded():
        start, stop = shard_bounds(images.shape[0])
        with sharded_passes(False):
            own = extract_features(backbone, images[start:stop], mean, std, device, batch_size, amp, transform)
        # gathered on the device: NCCL moves only device tensors
        return all_gather_uneven(own.to(device).reshape(stop - start, -1)).cpu().reshape(-1, *own.shape[1:])
    out = []
    total, done = len(images), 0
    with eval_mode(backbone):
        for x in _normalised_batches(images, mean, std, device, batch_size, transform):
            with autocast(device, amp_enabled(amp, device)):
                out.append(backbone(x).float().cpu())
            done += x.shape[0]
            say(f"features of {done:,}/{total:,} images")
    return torch.cat(out) if out else torch.empty(0)


#: images per augmentation draw in :func:`augmented_features`: its generator is seeded by the chunk's place in the
#: dataset, so any split of the dataset between processes draws the same views
AUGMENT_CHUNK = 256


@torch.no_grad()
def augmented_features(backbone: nn.Module, images, recipe: Callable, seed: int, device: torch.device,
                       lo: int = 0, hi: Optional[int] = None, amp: bool = False) -> Tensor:
    """(hi - lo, D) float32 features of one augmented view of each of ``images[lo:hi]`` through ``recipe``, on the
    CPU. The views of each chunk of :data:`AUGMENT_CHUNK` images come from a generator seeded by ``seed`` and the
    chunk's index in the whole dataset, so a process computing a share of the images draws exactly the views a
    single process would (a chunk cut by the share's bounds is augmented whole and sliced)."""
    from ..data.stream import pixels

    hi = len(images) if hi is None else hi
    out = []
    with eval_mode(backbone):
        for c0 in range(lo - lo % AUGMENT_CHUNK, hi, AUGMENT_CHUNK):
            c1 = min(c0 + AUGMENT_CHUNK, len(images))
            gen = torch.Generator(device=device).manual_seed((seed * 1_000_003 + c0 // AUGMENT_CHUNK) % (2**63 - 1))
            views = recipe(pixels(images, torch.arange(c0, c1)).to(device), 1, gen)
            with autocast(device, amp_enabled(amp, device)):
                feats = backbone(views).float().cpu()
            out.append(feats[max(lo, c0) - c0 : min(hi, c1) - c0])
    return torch.cat(out) if out else torch.empty(0)


def resolve_layer(backbone: nn.Module, name: str) -> nn.Module:
    """A probe layer by its name in ``backbone.probe_layers()``, or any module path of ``named_modules()``."""
    from ..errors import SsltkError

    named = dict(getattr(backbone, "probe_layers", lambda: {})())
    if name in named:
        return named[name]
    modules = dict(backbone.named_modules())
    if name in modules and name:
        return modules[name]
    choices = ", ".join(named) or "module paths of named_modules()"
    raise SsltkError(f"{type(backbone).__name__} has no layer {name!r}; probe layers: {choices}")


def pooled_side(channels: int, target_dim: int) -> int:
    """The side s of the adaptive pooling that brings C x s x s closest to ``target_dim`` features (about 9,600 in
    paper 004's conv probes, after Zhang et al. 2017)."""
    return max(1, int(round(math.sqrt(target_dim / channels))))


@torch.no_grad()
def layer_features(backbone: nn.Module, layer: nn.Module, x: Tensor, target_dim: int = 9600,
                   pool: str = "avg") -> Tensor:
    """(B, C * s * s) features of one intermediate layer for one normalised batch ``x``, pooled (``avg`` or ``max``)
    to about ``target_dim`` dimensions; the backbone runs as it is (the caller chooses its mode)."""
    pool_fn = F.adaptive_max_pool2d if pool == "max" else F.adaptive_avg_pool2d
    captured = {}
    hook = layer.register_forward_hook(lambda m, i, o: captured.__setitem__("out", o))
    try:
        backbone(x)
    finally:
        hook.remove()
    fmap = captured.pop("out")
    if fmap.dim() != 4:
        raise ValueError(f"probe layers must output feature maps (B, C, H, W), got {tuple(fmap.shape)}")
    side = pooled_side(fmap.shape[1], target_dim)  # never above the map's size: pooling, not upsampling
    size = (min(side, fmap.shape[2]), min(side, fmap.shape[3]))
    return pool_fn(fmap.float(), size).flatten(1)


@torch.no_grad()
def extract_layer_features(backbone: nn.Module, layer: nn.Module, images: Tensor, mean: Sequence[float],
                           std: Sequence[float], device: torch.device, target_dim: int = 9600,
                           batch_size: int = 256, pool: str = "avg") -> Tensor:
    """(N, C * s * s) features of one intermediate layer over un-augmented images, in order, on the CPU
    (:func:`layer_features` a batch at a time, the backbone in eval mode)."""
    with eval_mode(backbone):
        out = [layer_features(backbone, layer, x, target_dim, pool).cpu()
               for x in _normalised_batches(images, mean, std, device, batch_size)]
    return torch.cat(out) if out else torch.empty(0)
