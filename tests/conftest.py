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
