"""Built-in datasets of this release: the embedded ``digits``, ``cifar10`` from its pickled batches, and
``imagefolder`` for any ``root/class/image`` tree. Each is a :class:`~ssltk.data.base.DataSource`."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SsltkError
from .base import DataSource, ImageSet
from .imagefolder import decode_folder, find_images
from .stats import NAMED_STATS, resolve_stats


class Digits(DataSource):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes), upsampled to ``size`` px and
    replicated to 3 channels so every backbone accepts it. Ships with the package: the offline default dataset.
    By default 20% is held out (seeded) as the validation split that evaluation tests on."""

    def __init__(self, size: int = 32, val_size: Union[int, float] = 0.2, train_size: Optional[int] = None,
                 split_seed: int = 0, stats: str = "computed"):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.size, self.stats = size, stats

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x.clamp_(0, 1).mul_(255).round_().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
        full = ImageSet(x, torch.from_numpy(d.target), [str(i) for i in range(10)])
        self.mean, self.std = resolve_stats(self.stats, full.images)
        return full, None


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        return pickle.load(fh, encoding="latin1")


class Cifar10(DataSource):
    """CIFAR-10 from the official ``cifar-10-batches-py`` folder (``data_batch_1..5`` and ``test_batch``).

    ``root`` may be that folder or its parent. With ``download: true`` torchvision fetches it when missing.
    """

    folder = "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test_batch"]
    label_key = "labels"
    stats_name = "cifar10"

    def __init__(self, root: str = "data", val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, download: bool = False):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.download = Path(root).expanduser(), download
        self.mean, self.std = NAMED_STATS[self.stats_name]

    def _dir(self) -> Path:
        for cand in (self.root, self.root / self.folder):
            if all((cand / f).is_file() for f in self.train_files):
                return cand
        if self.download:
            self._download()
            return self.root / self.folder
        raise SsltkError(
            f"{type(self).__name__.lower()} files not found: expected {self.root / self.folder}/"
            f"{{{','.join(self.train_files + self.test_files)}}} (the official python pickles); "
            "set --data.root or pass --data.download true where there is network access"
        )

    def _download(self) -> None:
        import torchvision

        cls = torchvision.datasets.CIFAR10 if self.stats_name == "cifar10" else torchvision.datasets.CIFAR100
        try:
            cls(str(self.root), train=True, download=True)
        except Exception as exc:
            raise SsltkError(f"download of {cls.__name__} into {self.root} failed: {exc}") from None

    def _read(self, folder: Path, names: List[str]) -> ImageSet:
        xs, ys = [], []
        for name in names:
            path = folder / name
            try:
                batch = _unpickle(path)
                xs.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[self.label_key], dtype=np.int64))
            except Exception as exc:
                raise SsltkError(f"cannot read CIFAR batch {path}: {exc}") from None
        return ImageSet(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        folder = self._dir()
        train = self._read(folder, self.train_files)
        test = self._read(folder, self.test_files) if all((folder / f).is_file() for f in self.test_files) else None
        return train, test


class ImageFolder(DataSource):
    """Any ``root/<class>/<image>`` tree, decoded once in parallel workers and resized to ``size`` x ``size``.

    If ``root`` holds ``train/`` (and optionally ``test/`` or ``val/``) class trees, those are the official splits.
    Unreadable images stop loading with their paths listed, unless ``skip_corrupt`` is set, in which case they are
    skipped and their paths printed. ``stats`` is ``computed`` (measured on the training images) or a preset name.
    """

    def __init__(self, root: str = "data", size: int = 32, val_size: Union[int, float] = 0,
                 train_size: Optional[int] = None, split_seed: int = 0, stats: str = "computed",
                 workers: int = 2, skip_corrupt: bool = False):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.size, self.stats = Path(root).expanduser(), size, stats
        self.workers, self.skip_corrupt = workers, skip_corrupt

    def _roots(self) -> Tuple[Path, Optional[Path]]:
        if not self.root.is_dir():
            raise SsltkError(f"image folder not found: {self.root} (expected {self.root}/<class>/<image>)")
        train = self.root / "train"
        if train.is_dir() and any(p.is_dir() for p in train.iterdir()):
            test = next((self.root / n for n in ("test", "val") if (self.root / n).is_dir()), None)
            return train, test
        return self.root, None

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        train_root, test_root = self._roots()
        paths, labels, classes = find_images(train_root)
        train = decode_folder(paths, labels, classes, self.size, self.workers, self.skip_corrupt)
        test = None
        if test_root is not None:
            tpaths, tlabels, _ = find_images(test_root, classes)
            test = decode_folder(tpaths, tlabels, classes, self.size, self.workers, self.skip_corrupt)
        self.mean, self.std = resolve_stats(self.stats, train.images)
        return train, test
