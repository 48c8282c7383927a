"""Built-in datasets of this release: the embedded ``digits``, ``cifar10`` from its pickled batches, and
``imagefolder`` for any ``root/class/image`` tree. Each is a :class:`~ssltk.data.base.DataSource`."""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SsltkError, check_at_least
from .base import FILE_SOURCE_ARGS, DataSource, ImageSet
from .imagefolder import decode_folder, open_records
from .records import FileRecords, scan_folder
from .headers import MAX_PIXELS, check_max_pixels
from .stream import check_stream_option
from .stats import NAMED_STATS, resolve_stats


class Digits(DataSource):
    """scikit-learn's bundled 8x8 handwritten digits (1,797 real images, 10 classes), upsampled to ``size`` px and
    replicated to 3 channels so every backbone accepts it. Ships with the package: the offline default dataset.
    By default 20% is held out (seeded) as the validation split that evaluation tests on."""

    def __init__(self, size: int = 32, val_size: Union[int, float] = 0.2, train_size: Optional[int] = None,
                 split_seed: int = 0, stats: str = "computed"):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.size, self.stats = size, stats
        check_at_least(1, "data.", size=size)

    def has_test_split(self) -> Optional[bool]:
        return False

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.from_numpy(d.images).float().div_(16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
        x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x.clamp_(0, 1).mul_(255).round_().to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
        full = ImageSet(x, torch.from_numpy(d.target), [str(i) for i in range(10)])
        self.mean, self.std = resolve_stats(self.stats, full.images)
        return full, None


class _CifarUnpickler(pickle.Unpickler):
    """Admits only what the official CIFAR batches hold: dicts, lists, strings, bytes, numbers and numpy arrays.

    The official format is a pickle, and ``pickle.load`` calls any global a file names (a ``__reduce__`` payload runs
    code); this unpickler refuses every global outside numpy's array reconstruction, so a batch file cannot run code.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        # protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, 'latin1')
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}: a CIFAR batch holds only arrays, lists "
                                     "and strings")


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as fh:
        batch = _CifarUnpickler(fh, encoding="latin1").load()
    if not isinstance(batch, dict):
        raise ValueError(f"expected a dict, got {type(batch).__name__}")
    return batch


class Cifar10(DataSource):
    """CIFAR-10 from the official ``cifar-10-batches-py`` folder (``data_batch_1..5`` and ``test_batch``).

    ``root`` may be that folder or its parent. With ``download: true`` torchvision fetches it when missing. Where the
    official files are absent, ``root`` may instead be an image export of the set: ``root/<class>/<image>`` (or
    ``root/train/<class>/...`` with an optional ``root/test/``), one folder per class, whose sorted names give the
    official label order (airplane ... truck), such as the JPEG export in ``../shared/datasets``.
    """

    folder = "cifar-10-batches-py"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test_batch"]
    label_key = "labels"
    stats_name = "cifar10"
    num_tree_classes = 10

    def __init__(self, root: str = "data", val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, download: bool = False):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.download = Path(root).expanduser(), download
        self.mean, self.std = NAMED_STATS[self.stats_name]

    def _official(self) -> Optional[Path]:
        for cand in (self.root, self.root / self.folder):
            if all((cand / f).is_file() for f in self.train_files):
                return cand
        return None

    def has_test_split(self) -> Optional[bool]:
        official = self._official()
        if official is not None:
            return all((official / f).is_file() for f in self.test_files)
        if self._image_tree():
            return any((self.root / n).is_dir() for n in ("test", "val")) and (self.root / "train").is_dir()
        return None

    def _image_tree(self) -> bool:
        base = self.root / "train" if (self.root / "train").is_dir() else self.root
        return base.is_dir() and sum(1 for p in base.iterdir() if p.is_dir()) == self.num_tree_classes

    def _dir(self) -> Path:
        found = self._official()
        if found is not None:
            return found
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
            raise SsltkError(f"download of {cls.__name__} into {self.root} failed ({exc}); without network, place the "
                             f"official files at {self.root / self.folder}/{{{','.join(self.train_files + self.test_files)}}}"
                             ) from None

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
        if self._official() is None and not self.download and self._image_tree():
            if self.label_key == "coarse_labels":
                raise SsltkError(f"{type(self).__name__.lower()} needs the official files for its "
                                 f"{self.label_key!r}: an image tree at {self.root} has one folder per fine class")
            return ImageFolder(str(self.root), size=32, stats=self.stats_name, labels="folders",
                               stream=False).load_splits()
        folder = self._dir()
        train = self._read(folder, self.train_files)
        test = self._read(folder, self.test_files) if all((folder / f).is_file() for f in self.test_files) else None
        return train, test


class ImageFolder(DataSource):
    """Any folder of images: ``root/<class>/.../<image>`` (labelled by the first folder), or a flat or nested folder
    of unlabelled images (``labels: none``, or ``auto`` when ``root`` holds image files itself).

    If ``root`` holds ``train/`` (and optionally ``test/`` or ``val/``) class trees, those are the official splits.
    Images are decoded in ``workers`` processes and resized to ``size`` x ``size``. ``stream``: ``false`` decodes the
    set once into memory; ``true`` keeps only the file list and decodes each batch in the workers, cropping from the
    full-resolution image (:mod:`ssltk.data.stream`); ``auto`` streams when the decoded set would take more than a
    quarter of this machine's memory, and says so. An image whose header declares more than ``max_pixels`` pixels is
    refused before it is decoded (a small file can declare a huge image: :mod:`ssltk.data.headers`). Unreadable
    images stop loading (in memory) or training (streamed) with their paths, unless ``skip_corrupt`` is set. ``stats`` is ``computed`` (measured on the training
    images) or a preset name. Unlabelled images train every self-supervised objective; evaluators that need labels
    say so.

    Args:
        root: the folder: ``root/<class>/<image>``, flat images, or ``train/`` and ``test/`` (or ``val/``) trees.
        labels: ``folders`` (the first folder below ``root`` is the class), ``none`` (unlabelled), or ``auto``.
    """

    def __init__(self, root: str = "data", size: int = 32, val_size: Union[int, float] = 0,
                 train_size: Optional[int] = None, split_seed: int = 0, stats: str = "computed",
                 workers: int = 2, skip_corrupt: bool = False, labels: str = "auto",
                 stream: Union[bool, str] = "auto", max_pixels: int = MAX_PIXELS):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.size, self.stats = Path(root).expanduser(), size, stats
        check_at_least(1, "data.", size=size)
        self.workers, self.skip_corrupt, self.labels, self.stream = workers, skip_corrupt, labels, stream
        self.max_pixels = max_pixels
        check_stream_option(stream)
        check_max_pixels(max_pixels)

    def _roots(self) -> Tuple[Path, Optional[Path]]:
        if not self.root.is_dir():
            raise SsltkError(f"image folder not found: {self.root} (expected {self.root}/<image> or "
                             f"{self.root}/<class>/<image>)")
        train = self.root / "train"
        if train.is_dir() and any(p.is_dir() for p in train.iterdir()):
            test = next((self.root / n for n in ("test", "val") if (self.root / n).is_dir()), None)
            return train, test
        return self.root, None

    def has_test_split(self) -> Optional[bool]:
        try:
            return self._roots()[1] is not None
        except SsltkError:
            return None

    def _open(self, root: Path, classes: Optional[List[str]], labels: str, what: str) -> ImageSet:
        paths, ids, classes = scan_folder(root, labels, classes)
        return open_records(FileRecords(paths), ids, classes, self.size, self.workers, self.skip_corrupt,
                            self.stream, what, max_pixels=self.max_pixels)

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        train_root, test_root = self._roots()
        train = self._open(train_root, None, self.labels, f"{train_root}")
        test = None
        if test_root is not None:
            labelled = "none" if not train.classes else "folders"
            test = self._open(test_root, train.classes or None, labelled, f"{test_root}")
        self.mean, self.std = resolve_stats(self.stats, train.images)
        return train, test


ImageFolder.__doc__ = ImageFolder.__doc__.rstrip() + "\n" + FILE_SOURCE_ARGS


class Cifar100(Cifar10):
    """CIFAR-100 from the official ``cifar-100-python`` folder (``train`` and ``test`` pickles), 100 fine classes."""

    folder = "cifar-100-python"
    train_files = ["train"]
    test_files = ["test"]
    label_key = "fine_labels"
    stats_name = "cifar100"
    num_tree_classes = 100


class Cifar100Coarse(Cifar100):
    """CIFAR-100-20: CIFAR-100 images with the 20 coarse super-class labels (the "grain" protocol of paper 002)."""

    label_key = "coarse_labels"


class SVHN(DataSource):
    """SVHN from the official ``train_32x32.mat`` / ``test_32x32.mat`` files (label 10 is the digit 0)."""

    def __init__(self, root: str = "data", val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, download: bool = False, stats: str = "computed"):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.download, self.stats = Path(root).expanduser(), download, stats

    def _read(self, name: str) -> ImageSet:
        from scipy.io import loadmat

        path = self.root / name
        try:
            mat = loadmat(str(path))
        except Exception as exc:
            raise SsltkError(f"cannot read SVHN file {path}: {exc}") from None
        x = torch.from_numpy(np.ascontiguousarray(mat["X"].transpose(3, 2, 0, 1))).to(torch.uint8)
        y = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1)) % 10
        return ImageSet(x, y, [str(i) for i in range(10)])

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        if not (self.root / "train_32x32.mat").is_file():
            if self.download:
                import torchvision

                try:
                    torchvision.datasets.SVHN(str(self.root), split="train", download=True)
                    torchvision.datasets.SVHN(str(self.root), split="test", download=True)
                except Exception as exc:
                    raise SsltkError(f"download of SVHN into {self.root} failed ({exc}); without network, place "
                                     f"train_32x32.mat and test_32x32.mat in {self.root}") from None
            else:
                raise SsltkError(f"svhn files not found: expected {self.root}/train_32x32.mat and test_32x32.mat "
                                 "(the official format); set --data.root or pass --data.download true")
        train = self._read("train_32x32.mat")
        test = self._read("test_32x32.mat") if (self.root / "test_32x32.mat").is_file() else None
        self.mean, self.std = resolve_stats(self.stats, train.images)
        return train, test


class STL10(DataSource):
    """STL-10 at 96 px from the official ``stl10_binary`` folder.

    ``split`` chooses what self-supervised training sees: ``unlabeled`` (100,000 images, the default, as in paper
    002's STL-10 experiments), ``train`` (5,000 labelled) or ``train+unlabeled``. Evaluation always trains on the
    labelled ``train`` split and tests on ``test``.
    """

    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, root: str = "data", split: str = "unlabeled", download: bool = False):
        super().__init__()
        if split not in ("unlabeled", "train", "train+unlabeled"):
            raise SsltkError(f"unknown stl10 split {split!r}; use unlabeled, train or train+unlabeled")
        self.root, self.split, self.download = Path(root).expanduser(), split, download

    def _dir(self) -> Path:
        for cand in (self.root, self.root / "stl10_binary"):
            if (cand / "train_X.bin").is_file():
                return cand
        if self.download:
            import torchvision

            try:
                torchvision.datasets.STL10(str(self.root), split="train", download=True)
            except Exception as exc:
                raise SsltkError(f"download of STL-10 into {self.root} failed ({exc}); without network, place the "
                                 f"binary files in {self.root}/stl10_binary/") from None
            return self.root / "stl10_binary"
        raise SsltkError(f"stl10 files not found: expected {self.root}/stl10_binary/{{train_X.bin,train_y.bin,"
                         "test_X.bin,test_y.bin,unlabeled_X.bin}}; set --data.root or pass --data.download true")

    @staticmethod
    def _images(path: Path) -> torch.Tensor:
        raw = np.fromfile(path, dtype=np.uint8)
        # the binary format stores each image column-major: (N, C, W, H)
        return torch.from_numpy(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy())

    def _labelled(self, folder: Path, split: str) -> ImageSet:
        y = torch.from_numpy(np.fromfile(folder / f"{split}_y.bin", dtype=np.uint8).astype(np.int64)) - 1
        return ImageSet(self._images(folder / f"{split}_X.bin"), y)

    def _splits(self):
        if self._cache is None:
            folder = self._dir()
            train, test = self._labelled(folder, "train"), self._labelled(folder, "test")
            if self.split == "train":
                ssl = train
            else:
                unl = self._images(folder / "unlabeled_X.bin")
                ssl = ImageSet(unl, torch.full((len(unl),), -1, dtype=torch.long))
                if self.split == "train+unlabeled":
                    ssl = ImageSet(torch.cat([train.images, unl]), torch.cat([train.labels, ssl.labels]))
            self._cache = (ssl, None, test)
            self._eval_train = train
        return self._cache

    def eval_pair(self, split: str = "auto"):
        _, _, test = self._splits()
        if split not in ("auto", "test"):
            raise SsltkError("stl10 evaluates on its official test split; use split auto or test")
        return self._eval_train, test, "test"

    @property
    def num_classes(self) -> int:
        return 10


class TinyImageNet(DataSource):
    """tiny-ImageNet from the ``tiny-imagenet-200`` folder: ``wnids.txt``, ``train/<wnid>/images/*.JPEG`` and
    ``val/images`` labelled by ``val/val_annotations.txt`` (the official validation set is the test split)."""

    mean = (0.5, 0.5, 0.5)
    std = (0.25, 0.25, 0.25)

    def __init__(self, root: str = "data", val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, workers: int = 2):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        self.root, self.workers = Path(root).expanduser(), workers

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        base = next((c for c in (self.root, self.root / "tiny-imagenet-200") if (c / "wnids.txt").is_file()), None)
        if base is None:
            raise SsltkError(f"tiny-imagenet not found: expected {self.root}/tiny-imagenet-200/{{wnids.txt,"
                             "train/<wnid>/images/,val/images/,val/val_annotations.txt}}")
        wnids = base.joinpath("wnids.txt").read_text().split()
        paths, labels = [], []
        for i, w in enumerate(wnids):
            for p in sorted((base / "train" / w / "images").glob("*")):
                paths.append(p)
                labels.append(i)
        train = decode_folder(paths, labels, wnids, 64, self.workers, False)
        test = None
        ann = base / "val" / "val_annotations.txt"
        if ann.is_file():
            index = {w: i for i, w in enumerate(wnids)}
            rows = [ln.split("\t") for ln in ann.read_text().splitlines() if ln.strip()]
            vpaths = [base / "val" / "images" / r[0] for r in rows]
            test = decode_folder(vpaths, [index[r[1]] for r in rows], wnids, 64, self.workers, False)
        return train, test


class SlimageNet(ImageFolder):
    """SlimageNet64 (64x64, 1,000 classes) in a folder layout: ``root/train/<class>/*`` with optional
    ``root/test/<class>/*`` or ``root/val/<class>/*``; normalised with mean 0.5, std 0.25 (paper 000, A.1)."""

    def __init__(self, root: str = "data", val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, workers: int = 2):
        super().__init__(root=root, size=64, val_size=val_size, train_size=train_size, split_seed=split_seed,
                         stats="slimagenet", workers=workers)


class Cifar10Imbalanced(Cifar10):
    """CIFAR-10 with the training-set imbalance of SeLa (paper 004, section 4.5).

    ``imbalance``: ``light`` removes 50% of the images of one class (``light_class``, default 9: truck, as section 4.5 says); ``heavy`` removes
    10%, 20%, ..., 90% of classes 1 to 9 and keeps class 0 whole; ``none`` keeps everything. The removal is seeded by
    ``split_seed``; the test set stays balanced.
    """

    def __init__(self, root: str = "data", imbalance: str = "light", light_class: int = 9,
                 val_size: Union[int, float] = 0, train_size: Optional[int] = None, split_seed: int = 0,
                 download: bool = False):
        super().__init__(root=root, val_size=val_size, train_size=train_size, split_seed=split_seed,
                         download=download)
        if imbalance not in ("none", "light", "heavy"):
            raise SsltkError(f"unknown imbalance {imbalance!r}; use none, light or heavy")
        self.imbalance, self.light_class = imbalance, light_class

    def removal_fractions(self) -> List[float]:
        if self.imbalance == "light":
            return [0.5 if c == self.light_class else 0.0 for c in range(10)]
        if self.imbalance == "heavy":
            return [c / 10 for c in range(10)]
        return [0.0] * 10

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        train, test = super().load_splits()
        g = torch.Generator().manual_seed(self.split_seed + 1)
        keep = torch.ones(len(train), dtype=torch.bool)
        for c, frac in enumerate(self.removal_fractions()):
            idx = (train.labels == c).nonzero().squeeze(1)
            drop = idx[torch.randperm(len(idx), generator=g)[: int(round(frac * len(idx)))]]
            keep[drop] = False
        return train.subset(keep.nonzero().squeeze(1)), test
