"""The data interface: a DataSource yields labelled uint8 image tensors for training and evaluation splits.

Every dataset of the papers is small enough to hold as one uint8 tensor (N, C, H, W), which is what makes batched
on-device augmentation possible (shared/DESIGN.md, "The data path").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import torch
from torch import Tensor

from ..errors import SsltkError
from ..interfaces import DataSpec


@dataclass
class ImageSet:
    """Images as uint8 (N, C, H, W) and integer labels (N,), -1 where an image has none.

    ``images`` is a tensor, or for a streamed set a :class:`ssltk.data.stream.StreamImages`, which answers the same
    ``shape``, ``len`` and indexing and decodes on demand."""

    images: Tensor
    labels: Tensor
    classes: Optional[List[str]] = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError("images and labels differ in length")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, index: Tensor) -> "ImageSet":
        return ImageSet(self.images[index], self.labels[index], self.classes)


def split_indices(n: int, val_size: Union[int, float], train_size: Optional[int], seed: int) -> Tuple[Tensor, Tensor]:
    """A fixed, seeded split of range(n): ``val_size`` images (a count, or a fraction if < 1) held out first, then
    ``train_size`` training images (all the rest when None). The same seed always gives the same split."""
    n_val = int(round(val_size * n)) if isinstance(val_size, float) and val_size < 1 else int(val_size)
    if n_val < 0 or n_val >= n:
        raise SsltkError(f"val_size={val_size} leaves no training images out of {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, rest = perm[:n_val], perm[n_val:]
    if train_size is not None:
        if train_size > len(rest):
            raise SsltkError(f"train_size={train_size} but only {len(rest)} images remain after the validation split")
        rest = rest[:train_size]
    return rest.sort().values, val.sort().values


def num_classes(*sets: ImageSet) -> int:
    """Classes spanned by the labels of the given sets (largest label + 1), e.g. an evaluation pair."""
    return int(max(s.labels.max() for s in sets).item()) + 1


#: the options every source of image files shares (ImageFolder, FileList, WebDataset), described once and appended
#: to each one's own Args, where the command line's help reads them
FILE_SOURCE_ARGS = """        size: side in pixels every image is resized to.
        val_size: training images held out as the validation split (a count, or a fraction of the set).
        train_size: keep only this many training images (seeded), for quick runs.
        split_seed: seed of the validation split and the ``train_size`` subset.
        stats: normalisation mean and std: ``computed`` (measured on the training images) or a preset name
            (``cifar10``, ``cifar100``, ``imagenet``, ...).
        workers: processes that decode the images.
        skip_corrupt: skip unreadable images (named on stderr) instead of stopping.
        stream: ``false`` decodes the set into memory, ``true`` decodes each batch from the files, ``auto`` streams
            when the decoded set would take more than a quarter of the memory.
        max_pixels: refuse (or skip, with ``skip_corrupt``) an image whose header declares more pixels, before it
            is decoded.
"""


class DataSource:
    """Base class of registered datasets.

    Subclasses implement :meth:`load_splits`, returning the raw training set and, where the dataset has one, its
    official test set. The base class applies the optional held-out validation split (``val_size``, a count or a
    fraction, drawn with ``split_seed``) and the optional training subset (``train_size``).

    ``train`` is what self-supervised training sees; ``eval_train`` and ``eval_test`` are the labelled pair that
    evaluators use: with a validation split, evaluation trains on the training split and tests on the validation
    split, otherwise it tests on the official test set.
    """

    mean: Tuple[float, ...] = (0.5, 0.5, 0.5)
    std: Tuple[float, ...] = (0.5, 0.5, 0.5)

    def __init__(self, val_size: Union[int, float] = 0, train_size: Optional[int] = None, split_seed: int = 0):
        if isinstance(val_size, bool) or not isinstance(val_size, (int, float)) or not val_size >= 0:
            raise SsltkError(f"--data.val_size must be a count or a fraction >= 0, got {val_size!r}")
        if isinstance(val_size, float) and val_size >= 1 and not val_size.is_integer():
            raise SsltkError(f"--data.val_size must be a fraction below 1 or a whole count, got {val_size!r}")
        if train_size is not None and (isinstance(train_size, bool) or not isinstance(train_size, int)
                                       or train_size < 1):
            raise SsltkError(f"--data.train_size must be a count >= 1 (or null for all), got {train_size!r}")
        self.val_size = val_size
        self.train_size = train_size
        self.split_seed = split_seed
        self._cache: Optional[Tuple[ImageSet, Optional[ImageSet], Optional[ImageSet]]] = None

    # to implement ---------------------------------------------------------------------------------------------------
    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:  # pragma: no cover - interface
        raise NotImplementedError

    # derived -------------------------------------------------------------------------------------------------------
    def _splits(self) -> Tuple[ImageSet, Optional[ImageSet], Optional[ImageSet]]:
        if self._cache is None:
            full, test = self.load_splits()
            if self.val_size or self.train_size is not None:
                tr, va = split_indices(len(full), self.val_size, self.train_size, self.split_seed)
                val = full.subset(va) if len(va) else None
                full = full.subset(tr)
            else:
                val = None
            self._cache = (full, val, test)
        return self._cache

    @property
    def train(self) -> ImageSet:
        return self._splits()[0]

    @property
    def val(self) -> Optional[ImageSet]:
        return self._splits()[1]

    @property
    def test(self) -> Optional[ImageSet]:
        return self._splits()[2]

    def has_test_split(self) -> Optional[bool]:
        """Whether the data holds an official test split, said from the files' presence without loading them
        (None: not known until loaded). ``ssltk reproduce`` asks before training a cell that scores the test set."""
        return None

    def eval_pair(self, split: str = "auto") -> Tuple[ImageSet, ImageSet, str]:
        """(train, test, name of the test split) for evaluators; ``split`` is auto, val or test."""
        train, val, test = self._splits()
        if not self.labelled:
            raise SsltkError(f"{type(self).__name__} has no labels (an unlabelled folder of images): evaluation "
                             "needs labelled data; evaluate on a labelled set with --data, or skip it")
        if split == "auto":
            split = "val" if val is not None else "test"
        chosen = {"val": val, "test": test}.get(split)
        if split not in ("val", "test"):
            raise SsltkError(f"unknown evaluation split {split!r}; use auto, val or test")
        if chosen is None:
            raise SsltkError(f"{type(self).__name__} has no {split} split; set --data.val_size to hold one out")
        return train, chosen, split

    @property
    def labelled(self) -> bool:
        """Whether the data carries class labels (an unlabelled folder gives every image -1)."""
        return self.num_classes > 0

    @property
    def num_classes(self) -> int:
        """Largest label + 1 over every split; 0 for unlabelled data."""
        labels = [s.labels for s in self._splits() if s is not None]
        return max(int(torch.cat(labels).max().item()) + 1, 0)

    def spec(self) -> DataSpec:
        imgs = self.train.images
        return DataSpec(image_size=int(imgs.shape[-1]), channels=int(imgs.shape[1]), mean=tuple(self.mean),
                        std=tuple(self.std), num_classes=self.num_classes)

