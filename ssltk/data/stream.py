"""The streaming data path: images decoded from their files by DataLoader workers, a batch at a time.

The in-memory path holds every training image as one uint8 tensor. This path holds only a description of where each
image is (:mod:`ssltk.data.records`), so its memory does not grow with the set. Following the split of FFCV and DALI
(shared/DESIGN.md, "Data larger than memory"), the work is divided where it is cheapest:

- workers read and decode each image (``torchvision.io``, libjpeg-turbo; PIL for formats it lacks) and apply the
  *geometric* part of each view's recipe to the full-resolution image, returning fixed-size uint8 views. For a
  RandomResizedCrop recipe that is the crop, resized with antialiasing from the full image as the papers' ImageNet
  pipelines do; a recipe without a geometric split gets the image resized to the data's ``size``, exactly what the
  in-memory path holds;
- the *photometric* part (flip, jitter, grayscale, normalise) stays batched on the training device
  (:meth:`ssltk.data.recipes.Augmentation.photometric`).

Every random draw of a worker comes from a generator seeded by (epoch seed, rank, step), never by the worker, so
the views of a step do not depend on how many workers there are, and a re-run or resumed epoch sees the same views.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ..errors import SsltkError
from .decode import read_full, read_or_substitute, resize_u8
# their home before ssltk.data.decode; code written against stream keeps working
from .decode import load_resized, resize_u8_float  # noqa: F401
from .records import Records


@dataclass
class ResizedCropGeometry:
    """The geometric half of a RandomResizedCrop recipe, run in a worker on the full-resolution image: torchvision's
    box sampling (:func:`ssltk.data.augment.crop_boxes`), then the box resized to ``size`` with antialiasing."""

    size: int
    scale: Tuple[float, float]
    ratio: Tuple[float, float]

    def boxes(self, height: int, width: int, num_views: int, g: torch.Generator) -> Tensor:
        """(num_views, 4) crop boxes (top, left, height, width) for an image of that size: the only random draws."""
        from .augment import crop_boxes

        return crop_boxes(num_views, height, width, self.scale, self.ratio, g, "cpu").long()

    def __call__(self, img: Tensor, num_views: int, g: torch.Generator) -> Tensor:
        boxes = self.boxes(img.shape[-2], img.shape[-1], num_views, g).tolist()
        return torch.stack([resize_u8(img[:, t : t + bh, l : l + bw], self.size) for t, l, bh, bw in boxes])


@dataclass
class StreamGroup:
    """What the workers make for one view group: ``num_views`` crops through ``geometry``, or (``geometry`` None)
    the image resized to ``size`` once, for a recipe that does all its work on the device."""

    num_views: int
    geometry: Optional[ResizedCropGeometry]
    size: int

    @property
    def views_made(self) -> int:
        """Views per image the workers hand over: the crops, or the one resized image."""
        return self.num_views if self.geometry is not None else 1

    @property
    def view_size(self) -> int:
        """Side of what the workers hand over."""
        return self.geometry.size if self.geometry is not None else self.size


class StreamImages:
    """Images of a record store, decoded on demand: the streaming stand-in for a uint8 (N, C, H, W) tensor.

    It answers ``shape``, ``len`` and indexing: an integer gives that image's pixels; a slice, a list or an index
    tensor gives another StreamImages over those images (nothing is decoded). :meth:`batches` decodes in order with
    ``workers`` processes and bounded memory; :meth:`materialize` decodes everything (for small sets only).

    With ``skip_corrupt`` an unreadable image is replaced by the next readable one in dataset order (its path printed
    once), so batch shapes and the seeded order stay as they are; without it, reading it stops with its path.
    """

    dtype = torch.uint8
    device = torch.device("cpu")

    def __init__(self, records: Records, size: int, index: Optional[Tensor] = None, workers: int = 2,
                 skip_corrupt: bool = False):
        self.records, self.size, self.workers, self.skip_corrupt = records, int(size), int(workers), skip_corrupt
        self.index = torch.arange(len(records)) if index is None else index.long().cpu()

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), 3, self.size, self.size))

    def __len__(self) -> int:
        return len(self.index)

    def dim(self) -> int:
        return 4

    def _subset(self, index: Tensor) -> "StreamImages":
        return StreamImages(self.records, self.size, index, self.workers, self.skip_corrupt)

    def __getitem__(self, key) -> Union[Tensor, "StreamImages"]:
        if isinstance(key, int) or (isinstance(key, Tensor) and key.dim() == 0):
            return self.read(int(self.index[int(key)]))
        if isinstance(key, Tensor) and key.dtype == torch.bool:
            key = key.nonzero().squeeze(1)
        return self._subset(self.index[key.cpu() if isinstance(key, Tensor) else key])

    def to(self, *args, **kwargs) -> "StreamImages":
        """Stays where it is: streamed images reach the device a batch at a time."""
        return self

    def read(self, record: int) -> Tensor:
        """One record's pixels at ``size``; corrupt records follow the ``skip_corrupt`` rule."""
        return read_or_substitute(self.records, record, self.size, self.skip_corrupt)

    def batches(self, batch_size: int = 256) -> Iterator[Tensor]:
        """uint8 (b, 3, size, size) batches in dataset order, decoded by ``workers`` processes."""
        chunks = [torch.arange(s, min(s + batch_size, len(self))) for s in range(0, len(self), batch_size)]
        for _, (imgs,) in epoch_batches(self, chunks, [StreamGroup(1, None, self.size)], seed=0):
            yield imgs

    def materialize(self) -> Tensor:
        """Every image as one tensor: what an evaluator that needs random access to pixels (finetuning) uses."""
        return torch.cat(list(self.batches())) if len(self) else torch.empty(0, 3, self.size, self.size,
                                                                             dtype=torch.uint8)


def _report(notes: Sequence[str]) -> None:
    if notes:
        raise SsltkError(notes[0])


def mix_seed(*parts: int) -> int:
    """One 63-bit seed from several integers (splitmix-style), so nearby steps get unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class _StepViews(Dataset):
    """Item ``step``: this rank's images of that step, each group's views made by the geometric half, view-major.

    With ``encoded`` the JPEGs of the step are handed over undecoded, with their crop boxes, for the device to
    decode (:mod:`ssltk.data.device_decode`); the random draws are the same in both modes."""

    def __init__(self, images: StreamImages, order: List[Tensor], groups: List[StreamGroup], seed: int,
                 encoded: bool = False):
        self.images, self.order, self.groups, self.seed, self.encoded = images, order, groups, seed, encoded

    def __len__(self) -> int:
        return len(self.order)

    def _views_of(self, record: int, g: torch.Generator) -> List[Tensor]:
        """Each group's views (k, C, S, S) of one record, decoded here."""
        records, skip = self.images.records, self.images.skip_corrupt
        # decoded once per image, whatever the groups; load_resized's pixels for a group without geometry
        full = read_full(records, record, skip) if any(grp.geometry is not None for grp in self.groups) else None
        out = []
        for grp in self.groups:
            if grp.geometry is not None:
                out.append(grp.geometry(full, grp.num_views, g))
            elif full is not None:
                out.append(resize_u8(full, grp.size)[None])
            else:
                out.append(read_or_substitute(records, record, grp.size, skip)[None])
        return out

    def __getitem__(self, step: int):
        idx = self.order[step]
        g = torch.Generator().manual_seed(mix_seed(self.seed, step))
        try:
            if self.encoded:
                return idx, self._encoded(idx, g), []
            per_image = [self._views_of(int(self.images.index[i]), g) for i in idx.tolist()]
        except SsltkError as exc:
            return idx, [], [str(exc)]
        out = []
        for j in range(len(self.groups)):
            stacked = torch.stack([views[j] for views in per_image])  # (B, k, C, S, S)
            out.append(stacked.transpose(0, 1).reshape(-1, *stacked.shape[2:]).contiguous())
        return idx, out, []

    def _encoded(self, idx: Tensor, g: torch.Generator):
        from .device_decode import pack

        records = self.images.records
        jpegs, positions, recs, sizes = [], [], [], []
        boxes: List[List[Tensor]] = [[] for _ in self.groups]
        done: List[dict] = [{} for _ in self.groups]
        for pos, i in enumerate(idx.tolist()):
            record = int(self.images.index[i])
            try:
                data, hw = records.read_sized(record)
            except Exception:
                data, hw = b"", None  # unreadable: the workers' rule below names or replaces it
            if data[:2] != b"\xff\xd8":  # only JPEGs go to the device's decoder
                hw = None
            if hw is None:  # not a JPEG, or no header to draw from: decoded here, as in the workers mode
                for j, views in enumerate(self._views_of(record, g)):
                    done[j][pos] = views
                continue
            jpegs.append(data)
            positions.append(pos)
            recs.append(record)
            sizes.append(hw)
            for j, grp in enumerate(self.groups):
                boxes[j].append(grp.geometry.boxes(*hw, grp.num_views, g) if grp.geometry is not None
                                else torch.tensor([[0, 0, hw[0], hw[1]]]))
        return pack(len(idx), jpegs, positions, recs, sizes, boxes, done, [grp.views_made for grp in self.groups])


def _loader(dataset: Dataset, workers: int, pin: bool = False) -> DataLoader:

    return DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers, pin_memory=pin,
                      prefetch_factor=4 if workers > 0 else None, persistent_workers=False)


def epoch_batches(images: StreamImages, order: List[Tensor], groups: List[StreamGroup], seed: int,
                  pin: bool = False, decode_on: Optional[torch.device] = None) -> Iterator[Tuple[Tensor, List[Tensor]]]:
    """(index, [group views]) for each step of an epoch, where ``order[step]`` are this rank's dataset positions of
    that step and ``seed`` is the (epoch, rank) seed. A group with geometry yields (k * B, C, S, S) views,
    view-major; a group without yields the (B, C, size, size) images for its recipe to make the views.

    With ``decode_on`` the workers hand over JPEG bytes and crop boxes, and the views are made on that device
    (:func:`ssltk.data.device_decode.finish_step`)."""
    from .device_decode import finish_step

    sizes = [grp.view_size for grp in groups]
    steps = _StepViews(images, order, groups, seed, encoded=decode_on is not None)
    for idx, views, notes in _loader(steps, images.workers, pin):
        _report(notes)
        if decode_on is not None:
            views = finish_step(views, sizes, decode_on, images.records, images.skip_corrupt)
        yield idx, views


def stream_bytes_estimate(n: int, size: int, channels: int = 3) -> int:
    """Bytes the in-memory path would hold for ``n`` images at ``size`` px."""
    return int(n) * channels * int(size) ** 2


def memory_total() -> Optional[int]:
    """Physical memory of this machine in bytes, where the platform says it."""
    try:
        import os

        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_stream_option(stream) -> None:
    """One line for a ``--data.stream`` value other than true, false or auto (said when the dataset is built)."""
    if not isinstance(stream, bool) and stream != "auto":
        raise SsltkError(f"--data.stream must be true, false or auto, got {stream!r}")


def choose_stream(stream: Union[bool, str], n: int, size: int, limit_fraction: float = 0.25,
                  what: str = "data") -> bool:
    """Whether to stream: ``true``/``false`` as given; ``auto`` streams when the decoded set would take more than
    ``limit_fraction`` of this machine's memory, and says so."""
    check_stream_option(stream)
    if isinstance(stream, bool):
        return stream
    need, total = stream_bytes_estimate(n, size), memory_total()
    if total is None:
        return False
    limit = int(total * limit_fraction)
    if need > limit:
        print(f"ssltk: streaming {what} from disk: {n} images at {size} px would take {need / 2**30:.1f} GiB in "
              f"memory, above the limit of {limit / 2**30:.1f} GiB ({limit_fraction:.0%} of {total / 2**30:.1f} GiB)",
              file=sys.stderr)
        return True
    return False


def pixels(images, index=None) -> Tensor:
    """uint8 pixels of ``images[index]`` (all of them when ``index`` is None) as a tensor, whether ``images`` is a
    tensor or streamed: for the few places that need the pixels themselves (picture grids, finetuning)."""
    if isinstance(images, Tensor):
        return images if index is None else images[index]
    chosen = images if index is None else images[index]
    return chosen.materialize() if isinstance(chosen, StreamImages) else chosen
