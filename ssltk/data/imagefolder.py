"""Image sets read from files: decoded once into one uint8 tensor (in memory) or kept as records to stream.

Both paths hold an image through :func:`ssltk.data.decode.load_resized`, so an image streamed without a geometric
recipe has exactly the pixels the in-memory tensor holds.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import SsltkError
from .base import ImageSet
from .records import IMAGE_SUFFIXES, FileRecords, Records, scan_folder  # noqa: F401  (IMAGE_SUFFIXES re-exported)
from .headers import MAX_PIXELS
from .decode import load_resized
from .stream import StreamImages, choose_stream


def find_images(root: Path, classes: Optional[Sequence[str]] = None,
                labels: str = "folders") -> Tuple[List[Path], List[int], List[str]]:
    """Paths and class ids of every image below ``root``: see :func:`ssltk.data.records.scan_folder`."""
    return scan_folder(root, labels, classes)


class _Decode(Dataset):
    def __init__(self, records: Records, size: int):
        self.records, self.size = records, size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        try:
            return load_resized(self.records, i, self.size), i, ""
        except Exception as exc:
            return torch.zeros(3, self.size, self.size, dtype=torch.uint8), i, f"{type(exc).__name__}: {exc}"


def decode_records(records: Records, labels: List[int], classes: List[str], size: int, workers: int,
                   skip_corrupt: bool) -> ImageSet:
    """Every record decoded and resized to ``size`` in ``workers`` processes, as one in-memory ImageSet."""
    out = torch.empty(len(records), 3, size, size, dtype=torch.uint8)
    bad: List[Tuple[int, str]] = []
    loader = DataLoader(_Decode(records, size), batch_size=256, num_workers=workers, shuffle=False)
    for imgs, idx, errors in loader:
        out[idx] = imgs
        bad.extend((int(i), e) for i, e in zip(idx, errors) if e)
    keep = torch.ones(len(records), dtype=torch.bool)
    if bad:
        listing = "; ".join(f"{records.name(i)} ({e})" for i, e in bad[:5]) + (
            f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        if not skip_corrupt:
            raise SsltkError(f"{len(bad)} unreadable image(s): {listing} (pass --data.skip_corrupt true to skip them)")
        print(f"ssltk: skipping {len(bad)} unreadable image(s): {listing}", file=sys.stderr)
        keep[[i for i, _ in bad]] = False
    return ImageSet(out[keep], torch.tensor(labels, dtype=torch.long)[keep], classes)


def decode_folder(paths: List[Path], labels: List[int], classes: List[str], size: int, workers: int,
                  skip_corrupt: bool) -> ImageSet:
    """Image files decoded into memory (:func:`decode_records` over the files)."""
    return decode_records(FileRecords(list(paths)), labels, classes, size, workers, skip_corrupt)


def open_records(records: Records, labels: List[int], classes: List[str], size: int, workers: int,
                 skip_corrupt: bool, stream: Union[bool, str], what: str, max_pixels: int = MAX_PIXELS) -> ImageSet:
    """An ImageSet over ``records``: streamed (a :class:`StreamImages`) or decoded into memory, as ``stream`` says
    (``auto``: by the memory the decoded set would take, :func:`ssltk.data.stream.choose_stream`); images declaring
    more than ``max_pixels`` pixels are refused (or skipped) before they are decoded."""
    records.max_pixels = max_pixels
    if choose_stream(stream, len(records), size, what=what):
        images = StreamImages(records, size, workers=workers, skip_corrupt=skip_corrupt)
        return ImageSet(images, torch.tensor(labels, dtype=torch.long), classes)
    return decode_records(records, labels, classes, size, workers, skip_corrupt)
