"""A step's views, built in one place for in-memory and streamed data.

The epoch's seeded order is cut into global batches and each rank takes its consecutive part of each (so the steps,
checkpoints and seeds are those of a single-process run). In-memory images are gathered on the device
(:class:`HostBatches`) and every view group's recipe runs there with the epoch's generator; streamed images are
decoded by the workers, which apply the geometric half of each recipe, and the photometric half runs on the device.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..data.device_decode import check_device_decode
from ..data.stream import StreamGroup, StreamImages, epoch_batches
from ..errors import SsltkError
from ..interfaces import ViewGroup

#: mixes a rank into a seed, so that each rank augments its own images with its own stream (rank 0's is the
#: single-process stream)
RANK_STRIDE = 104_729


def rank_seed(seed: int, rank: int) -> int:
    return (seed + RANK_STRIDE * rank) % (2**63 - 1)


class HostBatches:
    """A step's images, gathered from where they are held and put on the training device.

    Images held on the device (the default) are indexed there. Images held on the host for a CUDA run are gathered
    into one of two pinned buffers and copied with ``non_blocking=True``, so the copy overlaps the previous step's
    kernels (a copy from pageable memory would block); a buffer is refilled only after the event recorded behind its
    last copy has completed.
    """

    def __init__(self, images: torch.Tensor, device: torch.device, batch: int):
        self.images, self.device = images, device
        self.staged = device.type == "cuda" and images.device.type == "cpu"
        if self.staged:
            self.buffers = [torch.empty((batch, *images.shape[1:]), dtype=images.dtype).pin_memory()
                            for _ in range(2)]
            self.events: List[Optional[Any]] = [None, None]
            self.turn = 0

    def __call__(self, idx: torch.Tensor) -> torch.Tensor:
        if not self.staged:
            return self.images[idx.to(self.images.device)].to(self.device)
        i, self.turn = self.turn, self.turn ^ 1
        if self.events[i] is not None:
            self.events[i].synchronize()
        buf = self.buffers[i][: len(idx)]
        torch.index_select(self.images, 0, idx, out=buf)
        out = buf.to(self.device, non_blocking=True)
        self.events[i] = torch.cuda.Event()
        self.events[i].record()
        return out


class ViewSource:
    """Where a fit's training images are held and how each step's views are made from them."""

    def __init__(self, train: Any, groups: Sequence[ViewGroup], image_size: int, cfg: Any, device: torch.device,
                 rank: int, world_size: int):
        self.groups = list(groups)
        self.device, self.rank = device, rank
        self.batch_size, self.local_batch = cfg.batch_size, cfg.batch_size // max(world_size, 1)
        self.channels_last = bool(cfg.channels_last)
        self.decode_on_device = cfg.stream_decode == "device"
        self.streaming = isinstance(train.images, StreamImages)
        self.batches: Optional[HostBatches] = None
        self.stream_groups: List[StreamGroup] = []
        if self.streaming:  # decoded by workers a batch at a time; the geometric half of each recipe runs there
            self.images = train.images
            self.stream_groups = [StreamGroup(g.num_views, g.augmentation.geometry(), image_size) for g in groups]
            if self.decode_on_device:
                check_device_decode(device)
        elif self.decode_on_device:
            raise SsltkError("--trainer.stream_decode device decodes streamed images, but this training set is held "
                             "in memory (decoded once when loaded): pass --data.stream true, or leave it at workers")
        else:
            self.images = train.images.to(device) if cfg.data_on_device else train.images
            self.batches = HostBatches(self.images, device, self.local_batch)

    def epoch(self, perm: Tensor, steps: int, seed: int, gen: torch.Generator) -> Iterator[Tuple[Tensor, List[Tensor]]]:
        """(indices, views of each group) for every step of an epoch; streamed workers start now, before the loop."""
        streamed = None
        if self.streaming:
            order = [perm[i * self.batch_size + self.rank * self.local_batch:][: self.local_batch]
                     for i in range(steps)]
            streamed = epoch_batches(self.images, order, self.stream_groups, rank_seed(seed, self.rank),
                                     pin=self.device.type == "cuda",
                                     decode_on=self.device if self.decode_on_device else None)
        return self._steps(perm, steps, gen, streamed)

    def _steps(self, perm: Tensor, steps: int, gen: torch.Generator, streamed) -> Iterator[Tuple[Tensor, List[Tensor]]]:
        for i in range(steps):
            if streamed is not None:
                idx, parts = next(streamed)
                made = [grp.augmentation(part.to(self.device, non_blocking=True), grp.num_views, gen)
                        if sg.geometry is None else
                        grp.augmentation.photometric(part.to(self.device, non_blocking=True), gen)
                        for grp, sg, part in zip(self.groups, self.stream_groups, parts)]
            else:
                start = i * self.batch_size + self.rank * self.local_batch
                idx = perm[start : start + self.local_batch]
                imgs = self.batches(idx)
                made = [grp.augmentation(imgs, grp.num_views, gen) for grp in self.groups]
            if self.channels_last:
                made = [v.contiguous(memory_format=torch.channels_last) for v in made]
            yield idx, made


class TrainFeatures:
    """``FitContext.extract_features``: features of the whole training set, plain or through the objective's recipe.

    ``augment``: one view of every image through the recipe, from a generator seeded by ``seed`` and each chunk's
    place in the dataset, so the views are the same for any sharding. ``gather``: under torchrun every rank
    computes its share and receives all features; without it, its share only."""

    def __init__(self, images: Any, backbone: Any, recipe: Any, spec: Any, device: torch.device, world_size: int,
                 amp: bool):
        self.images, self.backbone, self.recipe, self.spec = images, backbone, recipe, spec
        self.device, self.world_size, self.amp = device, world_size, amp

    def __call__(self, backbone: Optional[Any] = None, gather: bool = True, augment: bool = False,
                 seed: int = 0) -> Tensor:
        from .. import distributed as dist_util
        from ..eval.features import augmented_features, extract_features

        images = self.images
        if augment:
            start, stop = dist_util.shard_bounds(len(images)) if self.world_size > 1 else (0, len(images))
            own = augmented_features(backbone or self.backbone, images, self.recipe, seed, self.device, start, stop,
                                     amp=self.amp)
            if gather and self.world_size > 1:
                return dist_util.all_gather_uneven(own.to(self.device)).cpu()
            return own
        if not gather:
            start, stop = dist_util.shard_bounds(len(images))
            images = images[start:stop]
        with dist_util.sharded_passes() if gather else contextlib.nullcontext():
            return extract_features(backbone or self.backbone, images, self.spec.mean, self.spec.std, self.device,
                                    amp=self.amp)
