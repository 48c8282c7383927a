"""Shared fixtures: tiny on-disk datasets written by the tests themselves (nothing downloads)."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

# tests measure behaviour, not speed: keep them to the machine's two cores without oversubscription
torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def cifar_batches(tmp_path: Path) -> Path:
    """A tiny dataset in the official ``cifar-10-batches-py`` pickle format (random pixels, 10 classes)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 30)]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    return tmp_path


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    """``root/<class>/<image>.png`` with three classes of small coloured images of different sizes."""
    from PIL import Image

    root = tmp_path / "images"
    rng = np.random.default_rng(1)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir(parents=True)
        for i in range(8):
            side = 20 + 4 * (i % 3)
            arr = rng.integers(0, 256, (side, side + 2, 3), dtype=np.uint8)
            arr[..., c] = 255
            Image.fromarray(arr).save(root / name / f"{i}.png")
    return root


def write_mixed_jpegs(folder: Path, n: int, seed: int = 2) -> list:
    """``n`` JPEGs of random sizes (24 to 72 px a side) with smooth random content, straight in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        h, w = rng.integers(24, 73, 2)
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((int(w), int(h)), Image.BILINEAR)
        paths.append(folder / f"img{i:04d}.jpg")
        img.save(paths[-1], quality=90)
    return paths


@pytest.fixture
def flat_jpegs(tmp_path: Path) -> Path:
    """A flat folder of 96 unlabelled JPEGs of mixed sizes."""
    write_mixed_jpegs(tmp_path / "flat", 96)
    return tmp_path / "flat"


@pytest.fixture
def jpeg_shards(tmp_path: Path) -> str:
    """Three webdataset tar shards of 32 mixed-size JPEGs each, labelled 0-3 in ``.cls`` members; returns the
    brace pattern naming them."""
    import webdataset as wds

    paths = write_mixed_jpegs(tmp_path / "src", 96, seed=3)
    (tmp_path / "shards").mkdir()
    for s in range(3):
        with wds.TarWriter(str(tmp_path / "shards" / f"train-{s:04d}.tar")) as sink:
            for i in range(s * 32, (s + 1) * 32):
                sink.write({"__key__": f"s{i:05d}", "jpg": paths[i].read_bytes(), "cls": str(i % 4).encode()})
    return str(tmp_path / "shards" / "train-{0000..0002}.tar")
