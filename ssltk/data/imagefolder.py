"""Parallel decoding of an image tree into one uint8 tensor (the large-folder path of shared/DESIGN.md)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import SsltkError
from .base import ImageSet

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def find_images(root: Path, classes: Optional[Sequence[str]] = None) -> Tuple[List[Path], List[int], List[str]]:
    """Paths and class ids of every image below ``root/<class>/``; classes sorted by name unless given."""
    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise SsltkError(f"no class folders in {root} (expected {root}/<class>/<image>)")
    paths, labels = [], []
    for idx, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for p in sorted(folder.rglob("*")):
            if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
                paths.append(p)
                labels.append(idx)
    if not paths:
        raise SsltkError(f"no images found below {root} (suffixes {', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths, labels, list(classes)


class _Decode(Dataset):
    def __init__(self, paths: Sequence[Path], size: int):
        self.paths, self.size = paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        from PIL import Image

        try:
            with Image.open(self.paths[i]) as img:
                img = img.convert("RGB")
                if img.size != (self.size, self.size):
                    img = img.resize((self.size, self.size), Image.BILINEAR)
                arr = np.asarray(img, dtype=np.uint8).copy()
            return torch.from_numpy(arr).permute(2, 0, 1), i, ""
        except Exception as exc:
            return torch.zeros(3, self.size, self.size, dtype=torch.uint8), i, f"{type(exc).__name__}: {exc}"


def decode_folder(paths: List[Path], labels: List[int], classes: List[str], size: int, workers: int,
                  skip_corrupt: bool) -> ImageSet:
    out = torch.empty(len(paths), 3, size, size, dtype=torch.uint8)
    bad: List[Tuple[int, str]] = []
    loader = DataLoader(_Decode(paths, size), batch_size=256, num_workers=workers, shuffle=False)
    for imgs, idx, errors in loader:
        out[idx] = imgs
        bad.extend((int(i), e) for i, e in zip(idx, errors) if e)
    keep = torch.ones(len(paths), dtype=torch.bool)
    if bad:
        listing = "; ".join(f"{paths[i]} ({e})" for i, e in bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        if not skip_corrupt:
            raise SsltkError(f"{len(bad)} unreadable image(s): {listing} (pass --data.skip_corrupt true to skip them)")
        print(f"ssltk: skipping {len(bad)} unreadable image(s): {listing}", file=sys.stderr)
        keep[[i for i, _ in bad]] = False
    return ImageSet(out[keep], torch.tensor(labels)[keep], classes)
