"""Datasets read from lists of files and from tar shards (``filelist`` and ``webdataset``).

Both stream or load into memory as ``imagefolder`` does (``stream: auto|true|false``), with the same validation
split, corrupt-file rule and normalisation statistics.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Tuple, Union

from ..errors import SsltkError, check_at_least
from .base import FILE_SOURCE_ARGS, DataSource, ImageSet
from .imagefolder import open_records
from .records import FileRecords, _label_ids, expand_shards, index_shards, read_file_list
from .stats import resolve_stats
from .headers import MAX_PIXELS, check_max_pixels
from .stream import check_stream_option


class _Sourced(DataSource):
    def __init__(self, size: int, val_size: Union[int, float], train_size: Optional[int], split_seed: int,
                 stats: str, workers: int, skip_corrupt: bool, stream: Union[bool, str], max_pixels: int):
        super().__init__(val_size=val_size, train_size=train_size, split_seed=split_seed)
        check_stream_option(stream)
        check_max_pixels(max_pixels)
        check_at_least(1, "data.", size=size)
        self.size, self.stats, self.workers, self.skip_corrupt, self.stream = size, stats, workers, skip_corrupt, stream
        self.max_pixels = max_pixels

    def _finish(self, train: ImageSet, test: Optional[ImageSet]) -> Tuple[ImageSet, Optional[ImageSet]]:
        self.mean, self.std = resolve_stats(self.stats, train.images)
        return train, test


class FileList(_Sourced):
    """Images named in a list file (``train``) and optionally a second one (``test``): a ``.csv`` with ``path`` and
    optional ``label`` columns, or a text file with one ``path [label]`` per line (see
    :func:`ssltk.data.records.read_file_list`). Labels are class ids or names; images without one are unlabelled.

    Args:
        train: the list file of the training images.
        test: the list file of the test images, if any.
    """

    def __init__(self, train: str = "train.txt", test: Optional[str] = None, size: int = 32,
                 val_size: Union[int, float] = 0, train_size: Optional[int] = None, split_seed: int = 0,
                 stats: str = "computed", workers: int = 2, skip_corrupt: bool = False,
                 stream: Union[bool, str] = "auto", max_pixels: int = MAX_PIXELS):
        super().__init__(size, val_size, train_size, split_seed, stats, workers, skip_corrupt, stream, max_pixels)
        self.train_list = Path(train).expanduser()
        self.test_list = Path(test).expanduser() if test else None

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        paths, ids, classes = read_file_list(self.train_list)
        train = open_records(FileRecords(paths), ids, classes, self.size, self.workers, self.skip_corrupt,
                             self.stream, str(self.train_list), max_pixels=self.max_pixels)
        test = None
        if self.test_list is not None:
            tpaths, tids, tclasses = read_file_list(self.test_list)
            if tclasses and classes and tclasses != classes and not all(c.isdigit() for c in classes):
                raise SsltkError(f"{self.test_list} names classes {tclasses[:5]}... that differ from "
                                 f"{self.train_list}'s {classes[:5]}...")
            test = open_records(FileRecords(tpaths), tids, classes, self.size, self.workers, self.skip_corrupt,
                             self.stream, str(self.test_list), max_pixels=self.max_pixels)
        return self._finish(train, test)


class WebDataset(_Sourced):
    """Samples of uncompressed tar shards in the webdataset layout: members ``KEY.jpg`` (or png, webp, ...) and an
    optional ``KEY.cls`` holding the class id or name. ``shards`` is a local path or a brace pattern
    (``data/train-{000000..000127}.tar``), expanded by the ``webdataset`` package; ``test`` another for the test
    split. Each shard's headers are read once when the set is opened, so samples are read by offset in the seeded
    order of every other source (:class:`ssltk.data.records.TarRecords`). Labels are parsed as text, never
    unpickled, and ``pipe:`` or network URLs are refused.

    Args:
        shards: the training shards: a local path or a brace pattern.
        test: the test split's shards, if any.
    """

    def __init__(self, shards: str = "shards/train-{000000..000009}.tar", test: Optional[str] = None,
                 size: int = 32, val_size: Union[int, float] = 0, train_size: Optional[int] = None,
                 split_seed: int = 0, stats: str = "computed", workers: int = 2, skip_corrupt: bool = False,
                 stream: Union[bool, str] = "auto", max_pixels: int = MAX_PIXELS):
        super().__init__(size, val_size, train_size, split_seed, stats, workers, skip_corrupt, stream, max_pixels)
        self.shards, self.test_shards = shards, test

    def _open(self, pattern: str, classes: Optional[List[str]]) -> ImageSet:
        records, raw = index_shards(expand_shards(pattern))
        ids, found = _label_ids(raw, pattern)
        if classes is not None and found and not all(c.isdigit() for c in found):
            index = {c: i for i, c in enumerate(classes)}
            ids = [index.get(found[i], -1) if i >= 0 else -1 for i in ids]
            found = classes
        return open_records(records, ids, found, self.size, self.workers, self.skip_corrupt,
                             self.stream, pattern, max_pixels=self.max_pixels)

    def load_splits(self) -> Tuple[ImageSet, Optional[ImageSet]]:
        train = self._open(self.shards, None)
        test = self._open(self.test_shards, train.classes) if self.test_shards else None
        return self._finish(train, test)


for _source in (FileList, WebDataset):
    _source.__doc__ = _source.__doc__.rstrip() + "\n" + FILE_SOURCE_ARGS
